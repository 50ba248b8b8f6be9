"""Where the time of the SM90 large-M path goes (NOTES.md v4).

Per (shape, M): the op's kernels as the CUDA profiler sees them (the dequant
kernel(s) and the CUTLASS fp16 GEMM, mean µs per call), against cuBLAS fp16 on
the same problem (the GEMM part's own ceiling) and cuBLAS bf16, those two timed
interleaved with the op.

    python perf/nvfp4-mm/breakdown.py OUT.md
"""

import sys
from collections import defaultdict

import torch

from lowbit.nvfp4_mm.bench import _inputs
from lowbit.testing.bench import time_cuda_interleaved, write_table

POINTS = [(8192, 8192, 2048), (8192, 8192, 8192), (4096, 4096, 2048), (8192, 57344, 2048),
          (14336, 4096, 2048), (8192, 28672, 8192)]  # (K, N, M)


def kernel_times(fn, calls: int = 10) -> dict[str, float]:
    """Mean device µs per call of each kernel launched by fn."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    total = defaultdict(float)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            total[ev.name[:60]] += ev.device_time / calls
    return dict(total)


def main() -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    alpha = torch.ones(1, device=dev)
    rows = []
    for k, n, m in POINTS:
        a, sa, b, sb = _inputs(m, n, k, dev, g)
        out = torch.empty(m, n, dtype=torch.bfloat16, device=dev)
        op = lambda: torch.ops.lowbit_nvfp4_mm.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha)  # noqa: E731
        x16, w16 = torch.randn(m, k, device=dev, dtype=torch.half), torch.randn(n, k, device=dev, dtype=torch.half)
        xb, wb = x16.bfloat16(), w16.bfloat16()
        t = time_cuda_interleaved({"op": [op], "fp16": [lambda: torch.mm(x16, w16.t())],
                                   "bf16": [lambda: torch.mm(xb, wb.t())]})
        row = {"shape": f"M={m} N={n} K={k}", "op us": t["op"], "cuBLAS fp16 us": t["fp16"],
               "cuBLAS bf16 us": t["bf16"], "op / bf16": t["bf16"] / t["op"]}
        for i, (name, us) in enumerate(sorted(kernel_times(op).items(), key=lambda kv: -kv[1])):
            row[f"kernel {i}"] = f"{name} {us:.1f}"
        rows.append(row)
        print(row, flush=True)
        del a, sa, b, sb, out, x16, w16, xb, wb
        torch.cuda.empty_cache()
    text = f"# nvfp4-mm SM90 large-M breakdown on {torch.cuda.get_device_name(dev)}\n\n" + write_table(rows)
    open(sys.argv[1], "w").write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
