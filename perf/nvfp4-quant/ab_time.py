"""Time the experts / fused-SiLU / dense quant ops of whichever lowbit.nvfp4_quant is on
sys.path (run once per build: two builds cannot share one process, they register the
same op namespace). CUDA-graph replay of 20 calls over 4 rotating input sets; prints
median µs per call. Used for the A/B of issue #13's bandwidth question."""
import sys
import torch
import lowbit.nvfp4_quant  # noqa: F401  (loads the ops)

ops = torch.ops.lowbit_nvfp4_quant
M, K, E = 16384, 7168, 256
dev = "cuda"
counts = torch.full((E,), M // E, dtype=torch.int32)
off = torch.zeros(E + 1, dtype=torch.int32); off[1:] = counts.cumsum(0)
sfo = torch.zeros(E + 1, dtype=torch.int32); sfo[1:] = ((counts + 127) // 128 * 128).cumsum(0)
off, sfo = off.to(dev), sfo.to(dev)
rows = int(sfo[-1])
gs = torch.full((E,), 100.0, device=dev)
cases = {}
for name, k_in, silu in (("experts", K, False), ("silu_experts", 2 * K, True), ("silu_dense", 2 * K, None)):
    xs = [torch.randn(M, k_in, dtype=torch.bfloat16, device=dev) for _ in range(4)]
    out = torch.empty(M, K // 2, dtype=torch.uint8, device=dev)
    if silu is None:
        sf = torch.empty((M + 127) // 128 * 128, K // 16, dtype=torch.float8_e4m3fn, device=dev)
        g1 = torch.full((1,), 100.0, device=dev)
        fn = lambda x: ops.silu_and_mul_nvfp4_quant(out, sf, x, g1)
    else:
        sf = torch.empty(rows, K // 16, dtype=torch.float8_e4m3fn, device=dev)
        op = ops.silu_and_mul_scaled_fp4_experts_quant if silu else ops.scaled_fp4_experts_quant
        fn = lambda x, op=op: op(out, sf, x, gs, off, sfo)
    cases[name] = (fn, xs)
res = {}
for name, (fn, xs) in cases.items():
    for x in xs: fn(x)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(20): fn(xs[i % 4])
    ts = []
    for _ in range(15):
        a, b = torch.cuda.Event(True), torch.cuda.Event(True)
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1000 / 20)
    res[name] = sorted(ts)[len(ts) // 2]
print(sys.argv[1] if len(sys.argv) > 1 else "", {k: round(v, 1) for k, v in res.items()})
