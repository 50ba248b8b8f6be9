"""Every maybe_schedule name against the heuristic on the benchmark shapes:
the sweep the heuristic (csrc/schedules.cpp) is tuned from. Per (layer, M)
all schedules are timed in one interleaved measurement (lowbit.testing.bench).
Not part of the committed results.

    python perf/w4a8-mm/schedule_sweep.py OUT.md [--models Llama-3-8B ...] [--m 1,16,2048]

Also writes every candidate's time to OUT.json (for re-tuning).
"""

import argparse
import json

import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import bench as tb
from lowbit.testing.shapes import TOKENS, dense_layers
from lowbit.w4a8_mm.bench import DEFAULT_MODELS, _layer_weights


def candidates(M, N):
    """Schedules worth timing at (M, N): the tile must divide N; very narrow
    token tiles at large M and 256-token tiles at M <= 16 never win."""
    out = [None]
    for name in w4.SCHEDULES:
        tn, tm = (int(v) for v in name.split("_")[0].split("x"))
        if N % tn == 0 and not (tm <= 32 and M >= 2048) and not (tm >= 256 and M <= 16):
            out.append(name)
    return out


def sweep_layer(K, N, tokens, lines, times):
    sets, ch, _, _ = _layer_weights(N, K, "cuda")
    for M in tokens:
        A = torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn)
        tok = torch.rand(M, device="cuda") + 0.5
        cands = {str(s): [lambda b=b, g=g, s=s: w4.cutlass_w4a8_mm(A, b, g, 128, ch, tok, None, s)
                          for b, g in sets] for s in candidates(M, N)}
        us = tb.time_cuda_interleaved(cands)
        best = min(us, key=us.get)
        times.append({"N": N, "K": K, "M": M, "us": us})
        lines.append(f"| N={N} K={K} | {M} | {us['None']:.1f} | {best} | {us[best]:.1f} |")
        print(lines[-1], flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS))
    ap.add_argument("--m", default=",".join(map(str, TOKENS)))
    a = ap.parse_args()
    tokens = [int(m) for m in a.m.split(",")]
    lines = ["| shape | M | heuristic µs | best schedule | best µs |", "|---|---|---|---|---|"]
    times = []
    for _, K, N in dense_layers(a.models):
        sweep_layer(K, N, tokens, lines, times)
        torch.cuda.empty_cache()
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(a.out.rsplit(".", 1)[0] + ".json", "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "times": times}, f, indent=1)


if __name__ == "__main__":
    main()
