"""One large call of each op, for `ncu` (hardware counters) on the device:

    ncu --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,\
smsp__issue_active.avg.pct_of_peak_sustained_active python3 perf/nvfp4-quant/profile_one.py [M K [OPS]]

M, K default to 16384, 7168; OPS is a comma list of dense, silu, experts,
silu_experts (default: all four). The MoE ops spread M rows over 256 experts.
"""

import sys

import torch

import lowbit.nvfp4_quant as q

m = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
k = int(sys.argv[2]) if len(sys.argv) > 2 else 7168
which = set((sys.argv[3] if len(sys.argv) > 3 else "dense,silu,experts,silu_experts").split(","))
ops = torch.ops.lowbit_nvfp4_quant
x = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
xs = torch.randn(m, 2 * k, dtype=torch.bfloat16, device="cuda")
gs = torch.tensor([300.0], device="cuda")
out = torch.empty(m, k // 2, dtype=torch.uint8, device="cuda")
sf = torch.empty(q.swizzled_scale_shape(m, k), dtype=torch.uint8, device="cuda")
counts = torch.bincount(torch.randint(0, 256, (m,)), minlength=256)
off, sfo = (t.cuda() for t in q.expert_offsets(counts))
gse = torch.full((256,), 300.0, device="cuda")
esf = torch.empty(m + 128 * 256, (k // 16 + 3) // 4 * 4, dtype=torch.uint8, device="cuda")
for _ in range(2):
    if "dense" in which:
        ops.scaled_fp4_quant.out(x, gs, True, output=out, output_scale=sf)
    if "silu" in which:
        ops.silu_and_mul_nvfp4_quant(out, sf, xs, gs)
    if "experts" in which:
        ops.scaled_fp4_experts_quant(out, esf, x, gse, off, sfo)
    if "silu_experts" in which:
        ops.silu_and_mul_scaled_fp4_experts_quant(out, esf, xs, gse, off, sfo)
torch.cuda.synchronize()
