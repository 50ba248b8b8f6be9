"""Tuning sweep (not part of the committed results): the stream-K
schedules under each tile-scheduler decomposition (LOWBIT_W4A8_DECOMP) at
small M, to choose between CUTLASS's heuristic and a fixed split-K. The modes
of one (shape, M) are timed interleaved (lowbit.testing.bench)."""

import sys

import torch

import lowbit.w4a8_mm as w4
from lowbit.testing.bench import with_env
from lowbit.w4a8_mm.bench import MODELS, _weights
from lowbit.testing import bench as tb

MODES = ["heuristic", "dp", "streamk", "splitk2", "splitk4", "splitk8"]
SCHED = {1: "128x16_1x1x1", 16: "128x16_1x1x1", 32: "128x32_1x1x1", 64: "128x64_1x1x1",
         128: "128x128_1x1x1"}


def main(out):
    lines = ["| shape | M | schedule | " + " | ".join(MODES) + " |", "|---|---|---|" + "---|" * len(MODES)]
    for model in MODELS:
        for K, N in MODELS[model]:
            sets, ch = _weights(N, K, tb.rotation_count(N * K // 2 + (K // 128) * N * 8), "cuda")
            for M, sched in SCHED.items():
                A = torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn)
                tok = torch.rand(M, device="cuda") + 0.5
                cands = {mode: [with_env({"LOWBIT_W4A8_DECOMP": mode},
                                         lambda b=b, g=g: w4.cutlass_w4a8_mm(A, b, g, 128, ch, tok,
                                                                             None, sched))
                                for b, g in sets] for mode in MODES}
                us = tb.time_cuda_interleaved(cands)
                lines.append(f"| N={N} K={K} | {M} | {sched} | "
                             + " | ".join(f"{us[m]:.1f}" for m in MODES) + " |")
                print(lines[-1], flush=True)
            del sets
    open(out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
