"""A few calls of one grouped FP4 GEMM by kernel name, for `ncu` on the device:

    ncu --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
        --section SchedulerStats -k regex:wgmma_group_kernel -s 1 -c 1 \
        python3 perf/nvfp4-mm/profile_group.py [MODEL GEMM TOKENS KERNEL]

Defaults: Qwen3-30B-A3B gemm1 at 8192 tokens with wgmma_128x256 (the prefill
point furthest from bf16, perf/nvfp4-mm/NOTES.md v6). KERNEL "bf16" runs the
bf16 torch._grouped_mm of the same shapes instead (the baseline, for ncu).
"""

import sys

import torch

import lowbit.nvfp4_mm as mm
from lowbit.testing.experts import routed_counts
from lowbit.testing.shapes import MOE

model, gemm, tokens, kernel = (sys.argv[1:5] if len(sys.argv) > 4
                               else ("Qwen3-30B-A3B", "gemm1", "8192", "wgmma_128x256"))
cfg = MOE[model]
n, k = cfg.gemm1 if gemm == "gemm1" else cfg.gemm2
g = torch.Generator().manual_seed(0)
counts = routed_counts(int(tokens), cfg.experts, cfg.topk, g)
if kernel == "bf16":
    ends = torch.tensor(counts, device="cuda").cumsum(0).to(torch.int32)
    a16 = torch.randn(sum(counts), k, device="cuda", dtype=torch.bfloat16)
    w16 = torch.randn(cfg.experts, n, k, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        torch._grouped_mm(a16, w16.transpose(-2, -1), offs=ends)
    torch.cuda.synchronize()
    sys.exit(0)
x = mm.bench.group_inputs(counts, n, k, "cuda", g)
out = torch.empty(sum(counts), n, dtype=torch.bfloat16, device="cuda")
args = [x[key] for key in ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes", "expert_offsets",
                           "sf_offsets")]
for _ in range(3):
    mm._ops._cutlass_fp4_group_mm_with_kernel(out, *args, kernel)
torch.cuda.synchronize()
