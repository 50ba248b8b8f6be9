"""A few calls of one GEMM, for `ncu` (hardware counters) on the device:

    ncu --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
        -k regex:gemm_kernel -s 2 -c 1 python3 perf/nvfp4-mm/profile_one.py [M N K]

M, N, K default to 1, 8192, 8192 (the small-M decode case).
"""

import sys

import torch

from lowbit.nvfp4_mm.bench import _inputs

m, n, k = (int(v) for v in (sys.argv[1:4] if len(sys.argv) > 3 else (1, 8192, 8192)))
a, sa, b, sb = _inputs(m, n, k, "cuda", torch.Generator().manual_seed(0))
out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
alpha = torch.ones(1, device="cuda")
for _ in range(4):
    torch.ops.lowbit_nvfp4_mm.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha)
torch.cuda.synchronize()
