"""Device sweep: cutlass_w4a8_moe_mm's three tiles (by vLLM schedule name) at
decode, against fp8 torch._scaled_grouped_mm, interleaved (perf/ only).

    python perf/w4a8-mm/moe_schedule_sweep.py [--models Qwen3-30B-A3B Llama-4-Scout] [--tokens 1 16 64]
"""
import argparse

import torch

from lowbit.testing import bench as tb
from lowbit.testing.experts import routed_counts
from lowbit.testing.shapes import MOE
from lowbit.w4a8_mm import bench as wb
from lowbit.w4a8_mm import cutlass_w4a8_moe_mm, moe_strides

NAMES = ("Kernel_128x16_1x1x1_Coop", "Kernel_128x64_1x1x1_Coop", "Kernel_128x256_2x1x1_Coop")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=["Qwen3-30B-A3B", "Llama-4-Scout", "DeepSeek-R1"])
    ap.add_argument("--tokens", nargs="*", type=int, default=[1, 16, 64])
    a = ap.parse_args()
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    print("| model | GEMM | tokens | " + " | ".join(n[7:-5] for n in NAMES) + " | fp8 µs | best vs fp8 |")
    print("|---|---|---|" + "---|" * (len(NAMES) + 2))
    for model in a.models:
        cfg = MOE[model]
        for gemm, (N, K) in (("gemm1", cfg.gemm1), ("gemm2", cfg.gemm2)):
            w = wb._moe_weights(cfg.experts, N, K, dev)
            E = cfg.experts
            a_str, c_str, s_str = moe_strides(E, N, K, dev)
            for t in a.tokens:
                routings = [wb._moe_routing(routed_counts(t, E, cfg.topk, g), N, K, dev) for _ in range(8)]
                M = t * cfg.topk
                base = wb._moe_candidates(w, routings, M, N, K, dev)
                a8 = torch.randn(M, K, device=dev).to(torch.float8_e4m3fn)
                tok = torch.rand(M, device=dev) + 0.5
                out = torch.empty(M, N, device=dev, dtype=torch.bfloat16)
                cands = {"fp8": base["torch._scaled_grouped_mm fp8"]}
                for n in NAMES:
                    cands[n] = [lambda r=r, n=n: cutlass_w4a8_moe_mm(
                        out, a8, w["B"], tok, w["ch"], w["gs"], 128, r["offsets"], r["sizes"], a_str,
                        w["b_strides"], c_str, s_str, n) for r in routings]
                us = tb.time_cuda_interleaved(cands)
                best = min(us[n] for n in NAMES)
                print(f"| {model} | {gemm} N={N} K={K} | {t} | " + " | ".join(f"{us[n]:.1f}" for n in NAMES)
                      + f" | {us['fp8']:.1f} | {us['fp8'] / best:.2f}x |", flush=True)
            del w
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
