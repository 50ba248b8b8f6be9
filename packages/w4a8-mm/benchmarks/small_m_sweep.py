"""Small-M fixed-cost sweep (docs/perf-w4a8-mm.md v4), not part of the
committed results: per (shape, M), timed interleaved (lowbit.testing.bench),
the v3 choice (128-row stream-K tile, split-K when its tiles fill <= half the
SMs; no PDL) against the current heuristic with and without PDL
(LOWBIT_W4A8_PDL) and fp8 cuBLASLt; with --all also every small-M
data-parallel candidate (64-row ping-pong, 128-row persistent tiles) with and
without PDL, the sweep the v4 heuristic was chosen from. Large M: v3 = the
heuristic without PDL (v4 changed only the launch there).

    python benchmarks/small_m_sweep.py OUT.md [--all] [--m 512,2048] [--sequential]

--m: only these M; --sequential: also time "v4 no PDL" and fp8 each alone
(lowbit.testing.bench.time_cuda, the v3 tables' method) after the
interleaved round, to separate a timing-method shift from a kernel change.
"""

import sys

import torch

import lowbit.w4a8_mm as w4
from lowbit.testing.bench import with_env
from lowbit.w4a8_mm.bench import MODELS, _weights
from lowbit.testing import bench as tb

SMALL_M = [1, 16, 32, 64, 128]
# M -> (K, N) subset (None: all). M = 512 was added after the v4 runs (open
# question in docs/perf-w4a8-mm.md: is PDL or the timing behind its shift?).
LARGE = {512: None, 2048: None, 8192: [(8192, 8192), (14336, 4096)]}


def v3_schedule(M, N):
    """What the v3 heuristic picked for M <= 128 (None: unchanged since)."""
    if M <= 64:
        return f"128x{16 if M <= 16 else 32 if M <= 32 else 64}_1x1x1"
    if M <= 128:
        return "256x128_2x1x1" if N >= 16384 and N % 256 == 0 else "128x128_1x1x1"
    return None


def candidates(M, N, every):
    on, off = {"LOWBIT_W4A8_PDL": "1"}, {"LOWBIT_W4A8_PDL": "0"}
    # Above M = 128 "v3" is the same launch as "v4 no PDL": timed twice, a
    # gauge of the noise between identical candidates.
    c = {"v3": (v3_schedule(M, N), off), "v4": (None, on), "v4 no PDL": (None, off)}
    if every and M <= 128:
        t = 16 if M <= 16 else 32 if M <= 32 else 64
        c.update({f"64x{t} PDL": (f"64x{t}_1x1x1", on), f"64x{t}": (f"64x{t}_1x1x1", off),
                  f"128x{t}_dp PDL": (f"128x{t}_1x1x1_dp", on),
                  f"128x{t}_dp": (f"128x{t}_1x1x1_dp", off)})
    return c


def main(out, every=False, only=None, sequential=False):
    lines = []
    for model in MODELS:
        for K, N in MODELS[model]:
            w4_bytes = N * K // 2 + (K // 128) * N * 8
            sets, ch = _weights(N, K, tb.rotation_count(w4_bytes), "cuda")
            w_fp8 = [torch.randn(N, K, device="cuda").to(torch.float8_e4m3fn)
                     for _ in range(tb.rotation_count(N * K, cap=8))]
            ms = SMALL_M + [m for m, sub in LARGE.items() if sub is None or (K, N) in sub]
            if only:
                ms = [m for m in only if m in ms]
            for M in ms:
                A = torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn)
                tok = torch.rand(M, device="cuda") + 0.5
                cands = {}
                for label, (sched, env) in candidates(M, N, every).items():
                    cands[label] = [with_env(env, lambda b=b, g=g, s=sched: w4.cutlass_w4a8_mm(
                        A, b, g, 128, ch, tok, torch.bfloat16, s)) for b, g in sets]
                cands["fp8 cuBLASLt"] = [
                    lambda w=w: torch._scaled_mm(A, w.t(), scale_a=tok.view(M, 1),
                                                 scale_b=ch.view(1, N), out_dtype=torch.bfloat16)
                    for w in w_fp8]
                us = tb.time_cuda_interleaved(cands)
                best = min((k for k in us if k != "fp8 cuBLASLt"), key=us.get)
                if sequential:
                    for k in ("v4 no PDL", "fp8 cuBLASLt"):
                        us[f"{k} (sequential)"] = tb.time_cuda(cands[k], warmup=3, iters=30)
                line = (f"| N={N} K={K} | {M} | " + " | ".join(f"{k} {v:.1f}" for k, v in us.items())
                        + f" | best: {best} |")
                lines.append(line)
                print(line, flush=True)
            del sets, w_fp8
            torch.cuda.empty_cache()
    open(out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    args = sys.argv[2:]
    only = [int(m) for m in args[args.index("--m") + 1].split(",")] if "--m" in args else None
    main(sys.argv[1], every="--all" in args, only=only, sequential="--sequential" in args)
