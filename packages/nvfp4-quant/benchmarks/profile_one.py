"""One large call of each op, for `ncu` (hardware counters) on the device:

    ncu --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,\
smsp__issue_active.avg.pct_of_peak_sustained_active python3 benchmarks/profile_one.py
"""

import torch

import lowbit.nvfp4_quant as q

m, k = 16384, 7168
ops = torch.ops.lowbit_nvfp4_quant
x = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
xs = torch.randn(m, 2 * k, dtype=torch.bfloat16, device="cuda")
gs = torch.tensor([300.0], device="cuda")
out = torch.empty(m, k // 2, dtype=torch.uint8, device="cuda")
sf = torch.empty(q.swizzled_scale_shape(m, k), dtype=torch.uint8, device="cuda")
counts = torch.bincount(torch.randint(0, 256, (m,)), minlength=256)
off, sfo = (t.cuda() for t in q.expert_offsets(counts))
gse = torch.full((256,), 300.0, device="cuda")
esf = torch.empty(m + 128 * 256, k // 16, dtype=torch.uint8, device="cuda")
for _ in range(2):
    ops.scaled_fp4_quant.out(x, gs, True, output=out, output_scale=sf)
    ops.silu_and_mul_nvfp4_quant(out, sf, xs, gs)
    ops.scaled_fp4_experts_quant(out, esf, x, gse, off, sfo)
    ops.silu_and_mul_scaled_fp4_experts_quant(out, esf, xs, gse, off, sfo)
torch.cuda.synchronize()
