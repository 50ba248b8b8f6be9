"""lowbit.testing: pure-torch reference math written from the SPEC (not from
the kernels), and helpers the packages' tests and benchmarks share."""
