"""Every SM90 grouped-GEMM kernel of lowbit-nvfp4-mm and lowbit-mxfp4, by name,
beside bf16 torch._grouped_mm, timed interleaved (CUDA graphs), on MoE shapes.
Used to place the heuristic's boundaries between the decode (small_m), mma.sync
(multistage) and wgmma kernels.

    python perf/nvfp4-mm/group_kernel_sweep.py OUT.md [--models DeepSeek-R1,Qwen3-30B-A3B]
        [--tokens 64,256,1024,4096,8192] [--family nvfp4,mxfp4] [--kernels small_m_16x128,wgmma_64x128]
    python perf/nvfp4-mm/group_kernel_sweep.py OUT.md --dense [--models Llama-3-70B] [--tokens 64,128,256,512]

--dense: the dense NVFP4 GEMM (cutlass_scaled_fp4_mm, heuristic kernel) beside
the grouped kernels run as one expert of M rows (the same bytes: one expert's
scale region is the dense swizzled layout) and bf16 torch.mm.
"""
from __future__ import annotations

import sys

import torch

from lowbit.testing.bench import time_cuda_interleaved
from lowbit.testing.experts import routed_counts
from lowbit.testing.shapes import MOE

NV_ARGS = ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes", "expert_offsets", "sf_offsets")
MX_ARGS = ("a", "b", "a_blockscale", "b_blockscales", "problem_sizes", "expert_offsets", "sf_offsets")


def family_cands(family, counts, n, k, dev, g, kernels=None):
    if family == "nvfp4":
        import lowbit.nvfp4_mm as m
        x, names, op = m.bench.group_inputs(counts, n, k, dev, g), NV_ARGS, m._ops._cutlass_fp4_group_mm_with_kernel
    else:
        import lowbit.mxfp4 as m
        x, names, op = m.bench.group_inputs(counts, n, k, dev, g), MX_ARGS, m._ops._cutlass_mxfp4_group_mm_with_kernel
    out = torch.empty(sum(counts), n, dtype=torch.bfloat16, device=dev)
    args = [x[key] for key in names]
    return {f"{family}:{name}": [lambda name=name: op(out, *args, name)] for name in m.group_kernel_names(dev)
            if kernels is None or name in kernels}


def time_and_write(path, lines, cands, label, flop):
    """Time `cands` interleaved (one must be "bf16"), append a table row per
    candidate (fastest first) after the row label, rewrite the file."""
    times = time_cuda_interleaved(cands)
    for impl, us in sorted(times.items(), key=lambda kv: kv[1]):
        lines.append(f"| {label} | {impl} | {us:.1f} | {times['bf16'] / us:.3f} | {flop / us / 1e6:.0f} |")
    print("\n".join(lines[-len(times):]), flush=True)
    torch.cuda.empty_cache()
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(path, models, tokens, families, kernels=None):
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    lines = [f"# grouped FP4 kernels by name, {torch.cuda.get_device_name(dev)}", "",
             "| model | gemm | tokens | M | impl | us | x bf16 | TFLOP/s |", "|---|---|---|---|---|---|---|---|"]
    for model in models:
        cfg = MOE[model]
        for gemm, (n, k) in (("gemm1", cfg.gemm1), ("gemm2", cfg.gemm2)):
            for t in tokens:
                counts = routed_counts(t, cfg.experts, cfg.topk, g)
                E, m = len(counts), sum(counts)
                cands = {}
                for fam in families:
                    cands.update(family_cands(fam, counts, n, k, dev, g, kernels))
                ends = torch.tensor(counts, device=dev).cumsum(0).to(torch.int32)
                a16 = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
                w16 = torch.randn(E, n, k, device=dev, dtype=torch.bfloat16)
                cands["bf16"] = [lambda: torch._grouped_mm(a16, w16.transpose(-2, -1), offs=ends)]
                time_and_write(path, lines, cands, f"{model} | {gemm} N={n} K={k} | {t} | {m}", 2 * m * n * k)
                del cands, a16, w16
    return 0


def main_dense(path, models, tokens, kernels=None):
    import lowbit.nvfp4_mm as m
    from lowbit.testing.shapes import dense_layers

    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    lines = [f"# dense NVFP4 GEMM vs grouped kernels as one expert, {torch.cuda.get_device_name(dev)}", "",
             "| model | N | K | M | impl | us | x bf16 | TFLOP/s |", "|---|---|---|---|---|---|---|---|"]
    for model, k, n in dense_layers(models):
        for t in tokens:
            x = m.bench.group_inputs([t], n, k, dev, g)
            out = torch.empty(t, n, dtype=torch.bfloat16, device=dev)
            args = [x[key] for key in NV_ARGS]
            op = m._ops._cutlass_fp4_group_mm_with_kernel
            cands = {f"group:{name}": [lambda name=name: op(out, *args, name)] for name in m.group_kernel_names(dev)
                     if kernels is None or name in kernels}
            alpha = x["alphas"][:1]
            dense_out = torch.empty_like(out)
            cands["dense heuristic"] = [lambda: m.cutlass_scaled_fp4_mm(dense_out, x["a"], x["b"][0], x["a_blockscale"],
                                                                         x["b_blockscales"][0], alpha)]
            a16 = torch.randn(t, k, device=dev, dtype=torch.bfloat16)
            w16 = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
            cands["bf16"] = [lambda: torch.mm(a16, w16)]
            time_and_write(path, lines, cands, f"{model} | {n} | {k} | {t}", 2 * t * n * k)
            del cands, x, out
    return 0


if __name__ == "__main__":
    def opt(name, default):
        return sys.argv[sys.argv.index(name) + 1].split(",") if name in sys.argv else default

    if "--dense" in sys.argv:
        sys.exit(main_dense(sys.argv[1], opt("--models", ["Llama-3-70B"]),
                            [int(t) for t in opt("--tokens", ["64", "128", "256", "512", "1024"])],
                            opt("--kernels", None)))
    sys.exit(main(sys.argv[1], opt("--models", ["DeepSeek-R1", "Qwen3-30B-A3B"]),
                  [int(t) for t in opt("--tokens", ["64", "256", "1024", "4096", "8192"])],
                  opt("--family", ["nvfp4", "mxfp4"]), opt("--kernels", None)))
