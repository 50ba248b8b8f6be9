"""CPU GEMM kernels of one build: outputs (for a bit-exact A/B against another
build) and times. Run once per build, with that build first on PYTHONPATH:

    PYTHONPATH=<build> python perf/cpu/cpu_gemm_ab.py OUT.pt
    python perf/cpu/cpu_gemm_ab.py --compare A.pt B.pt

Cases: dense NVFP4 (bias / no bias, both output dtypes, M across the 4-row
blocks, N across the 64-column tiles), grouped NVFP4 and MXFP4 (uneven and
zero-row experts), dense and grouped W4A8."""

from __future__ import annotations

import sys
import time

import torch


def cases():
    import lowbit.mxfp4  # noqa: F401
    import lowbit.nvfp4_mm  # noqa: F401
    import lowbit.w4a8_mm as w4
    from lowbit.testing import mxfp4 as mx
    from lowbit.testing import nvfp4_gemm as nv
    from lowbit.testing import w4a8 as wr

    g = torch.Generator().manual_seed(11)
    for M, N, K in [(1, 4096, 4096), (3, 224, 96), (5, 64, 4096), (17, 992, 544), (64, 4096, 4096), (130, 160, 256)]:
        a, sa = nv.random_operand(M, K, "cpu", g)
        b, sb = nv.random_operand(N, K, "cpu", g)
        alpha = torch.rand(1, generator=g)
        for dt in (torch.bfloat16, torch.float16):
            for bias in (None, torch.randn(N, generator=g).to(dt)):
                out = torch.empty(M, N, dtype=dt)
                yield (f"nvfp4 {M}x{N}x{K} {dt} bias={bias is not None}",
                       lambda out=out, a=a, b=b, sa=sa, sb=sb, alpha=alpha, bias=bias:
                       (torch.ops.lowbit_nvfp4_mm.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha, bias), out)[1])
    for counts, N, K in [([0, 5, 1, 130, 0, 17], 256, 512), ([16] * 8, 2048, 1024)]:
        for fmt in ("nvfp4", "mxfp4"):
            mod = nv if fmt == "nvfp4" else mx
            p = mod.random_group_problem(counts, N, K, "cpu", g)
            out = torch.full((sum(counts), N), 7.0, dtype=torch.bfloat16)
            if fmt == "nvfp4":
                p["alphas"] = torch.rand(len(counts), generator=g)
                args = [p[k] for k in ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes",
                                       "expert_offsets", "sf_offsets")]
                op = torch.ops.lowbit_nvfp4_mm.cutlass_fp4_group_mm
            else:
                args = [p[k] for k in ("a", "b", "a_blockscale", "b_blockscales", "problem_sizes",
                                       "expert_offsets", "sf_offsets")]
                op = torch.ops.lowbit_mxfp4.cutlass_mxfp4_group_mm
            yield f"{fmt} group {counts} {N}x{K}", lambda out=out, op=op, args=args: (op(out, *args), out)[1]
    for M, N, K in [(1, 4096, 4096), (13, 640, 1024), (64, 4096, 4096)]:
        w = torch.randn(N, K, generator=g) / K**0.5
        q, s, ch = wr.quantize_weight(w, 128)
        A, tok = wr.quantize_activation(torch.randn(M, K, generator=g))
        B = w4.cutlass_encode_and_reorder_int4b(wr.pack_int4(q))
        gs = w4.cutlass_pack_scale_fp8(s)
        yield f"w4a8 {M}x{N}x{K}", lambda A=A, B=B, gs=gs, ch=ch, tok=tok: w4.cutlass_w4a8_mm(
            A, B, gs, 128, ch, tok, torch.bfloat16, None)


def main():
    if sys.argv[1] == "--compare":
        x, y = torch.load(sys.argv[2]), torch.load(sys.argv[3])
        bad = 0
        for name in x["out"]:
            same = torch.equal(x["out"][name].view(torch.int16), y["out"][name].view(torch.int16))
            bad += not same
            tx, ty = x["time"][name], y["time"][name]
            print(f"{'same bits' if same else 'DIFFERENT'}  {tx * 1e3:9.1f} ms -> {ty * 1e3:8.1f} ms  "
                  f"{tx / ty:6.1f}x  {name}")
        print("all bit-identical" if not bad else f"{bad} cases differ")
        return
    outs, times = {}, {}
    for name, fn in cases():
        outs[name] = fn().clone()
        best = float("inf")
        for _ in range(3):  # the fastest of three calls after the first
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        times[name] = best
    torch.save({"out": outs, "time": times, "threads": torch.get_num_threads()}, sys.argv[1])


if __name__ == "__main__":
    main()
