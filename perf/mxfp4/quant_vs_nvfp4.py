"""MXFP4 vs NVFP4 experts quantization on one GPU, same routing, same inputs.

    python perf/mxfp4/quant_vs_nvfp4.py [--tokens 1 64 1024 4096] [--models gpt-oss-120b DeepSeek-R1]

Both kernels now share one structure (lowbit/fp4_quant/ in lowbit-cutlass-ext); this
prints, per (op, model, tokens): µs of lowbit-mxfp4's op, of lowbit-nvfp4-quant's op
at the same K and routing (bf16 input), of a device copy of the MXFP4 op's bytes, and
each op's % of a copy of its own bytes. The goal (perf/mxfp4/NOTES.md): MXFP4 at least
as fast as NVFP4, >= 70 % of copy at 4096 tokens, a few µs at 1 token.
"""
from __future__ import annotations

import argparse

import torch

import lowbit.mxfp4 as mx
import lowbit.nvfp4_quant as nv  # noqa: F401  (registers torch.ops.lowbit_nvfp4_quant)
from lowbit.mxfp4.bench import _copy_closures
from lowbit.testing.experts import routed_counts
from lowbit.testing.bench import rotation_count, time_cuda_interleaved
from lowbit.testing.shapes import MOE, canonical_model


def round_up(a: int, b: int) -> int:
    return (a + b - 1) // b * b


def closures(fmt: str, silu: bool, m: int, k: int, counts: list[int], E: int):
    """(bytes moved, closures over rotating inputs) of one format's experts op."""
    block = 32 if fmt == "mxfp4" else 16
    kp = round_up(k // block, 4)
    off, sfo = mx.expert_offsets(torch.tensor(counts))
    off, sfo = off.cuda(), sfo.cuda()
    cols = 2 * k if silu else k
    nbytes = m * cols * 2 + m * k // 2 + sum(round_up(c, 128) for c in counts) * kp
    rows = mx.scale_rows_for(m, E)
    if fmt == "mxfp4":
        ops = torch.ops.lowbit_mxfp4
        op = ops.silu_and_mul_mxfp4_experts_quant if silu else ops.mxfp4_experts_quant
    else:
        ops = torch.ops.lowbit_nvfp4_quant
        op = ops.silu_and_mul_scaled_fp4_experts_quant if silu else ops.scaled_fp4_experts_quant
        gs = torch.full((E,), 448 * 6 / 4.0, device="cuda")

    def make():
        x = torch.randn(m, cols, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(m, k // 2, dtype=torch.uint8, device="cuda")
        if fmt == "mxfp4":
            sf = torch.empty(rows, kp, dtype=torch.uint8, device="cuda")
            return lambda: op(out, sf, x, off, sfo, E)
        sf = torch.empty(rows, kp, dtype=torch.float8_e4m3fn, device="cuda")
        return lambda: op(out, sf, x, gs, off, sfo)

    return nbytes, [make() for _ in range(rotation_count(nbytes))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[1, 64, 1024, 4096])
    ap.add_argument("--models", nargs="+", default=["gpt-oss-120b", "DeepSeek-R1"])
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    print("| op | model | K | tokens | mxfp4 us | nvfp4 us | mx/nv | copy us | mxfp4 % copy | nvfp4 % copy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in map(canonical_model, args.models):
        cfg = MOE[model]
        for silu in (False, True):
            k = cfg.intermediate if silu else cfg.hidden
            for t in args.tokens:
                m = t * cfg.topk
                counts = routed_counts(t, cfg.experts, cfg.topk, g)
                mb, mfns = closures("mxfp4", silu, m, k, counts, cfg.experts)
                nb, nfns = closures("nvfp4", silu, m, k, counts, cfg.experts)
                copies, cbytes = _copy_closures(mb, "cuda")
                us = time_cuda_interleaved({"mx": mfns, "nv": nfns, "copy": copies})
                bw = cbytes / us["copy"]  # bytes per µs of a copy
                print(f"| {'silu+' if silu else ''}experts_quant | {model} | {k} | {t} | {us['mx']:.1f} | "
                      f"{us['nv']:.1f} | {us['mx'] / us['nv']:.2f} | {us['copy']:.1f} | "
                      f"{100 * mb / bw / us['mx']:.0f} | {100 * nb / bw / us['nv']:.0f} |", flush=True)
                del mfns, nfns, copies
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
