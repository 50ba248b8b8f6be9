"""A fake kernel family implementing the `lowbit` command protocol (tests only)."""

__version__ = "9.9.9"

OPS = {"fake_quant": ("CPU", "SM90", "SM100", "SM120"), "fake_gemm": ("CPU", "SM90")}

# Every call the command makes, for tests that run it in-process.
CALLS = []


def build_info():
    return {"cuda_archs": ["90a", "100a"], "torch_built_against": "2.10.0"}
