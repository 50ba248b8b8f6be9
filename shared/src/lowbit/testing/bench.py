"""Benchmark helpers shared by every package's benchmark and `lowbit bench`.

Timing rules: CUDA events around the region, warm-up first,
median of many repeats, CUDA-graph replay for small problems so launch gaps do
not dominate, and rotating input sets so repeated runs do not just measure L2.
Implementations that are compared with each other go through
`time_cuda_interleaved`: one timing of several back to back let the one timed
first run up to 13 % slower than the same kernel timed later (clock and
allocation state; perf/w4a8-mm/NOTES.md, v3), so it interleaves them.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

import torch


def l2_bytes(device=None) -> int:
    if not torch.cuda.is_available():
        return 0
    props = torch.cuda.get_device_properties(device)
    return int(getattr(props, "L2_cache_size", 50 * 2**20))


def rotation_count(bytes_per_call: int, device=None, cap: int = 64) -> int:
    """How many distinct input sets make the rotation exceed ~3x the L2 cache."""
    if bytes_per_call <= 0:
        return 1
    return max(1, min(cap, -(-3 * l2_bytes(device) // bytes_per_call)))


def time_cuda(
    fns: Sequence[Callable[[], object]],
    *,
    warmup: int = 5,
    iters: int = 50,
    use_graph: bool = True,
    replays_per_sample: int | None = None,
) -> float:
    """Median microseconds of one call, cycling through `fns` (one closure per
    rotating input set). With use_graph, each sample replays a CUDA graph that
    calls every closure once, and the time is divided by len(fns)."""
    n = len(fns)
    for _ in range(warmup):
        for f in fns:
            f()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    if use_graph:
        g = _capture(fns)
        reps = replays_per_sample or max(1, 64 // n)
        for _ in range(3):
            g.replay()
        torch.cuda.synchronize()
        for _ in range(iters):
            start.record()
            for _ in range(reps):
                g.replay()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3 / (reps * n))
    else:
        for i in range(iters):
            start.record()
            for f in fns:
                f()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3 / n)
    return statistics.median(samples)


def _capture(fns: Sequence[Callable[[], object]]) -> "torch.cuda.CUDAGraph":
    """A CUDA graph calling every closure once (warmed on the capture stream)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(stream)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for f in fns:
            f()
    return g


def time_cuda_interleaved(
    candidates: dict[str, Sequence[Callable[[], object]]],
    *,
    min_sample_us: float = 1000.0,
    warmup_us: float = 20e3,
    budget_us: float = 150e3,
    min_rounds: int = 7,
    max_rounds: int = 31,
) -> dict[str, float]:
    """Median microseconds of one call for each candidate, all timed under the
    same conditions. Each candidate (name -> one closure per rotating input
    set) becomes a CUDA graph calling every closure once. Every graph is warmed
    up (>= warmup_us of replays), then each round takes one sample of every
    candidate (>= min_sample_us of back-to-back replays), the order rotating
    from round to round, so drift in clocks, temperature or memory state falls
    on all candidates alike. Rounds: enough for ~budget_us of samples per
    candidate, within [min_rounds, max_rounds]."""
    names = list(candidates)
    graphs, reps, calls = {}, {}, {}
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def replay_us(name: str, n: int) -> float:
        start.record()
        for _ in range(n):
            graphs[name].replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e3

    for name in names:
        fns = candidates[name]
        for f in fns:  # eager first call (lazy init, library heuristics)
            f()
        graphs[name], calls[name] = _capture(fns), len(fns)
        graphs[name].replay()
        one = max(replay_us(name, 1), 1.0)
        reps[name] = max(1, int(-(-min_sample_us // one)))
        replay_us(name, max(1, int(warmup_us // one)))
    # The first graphs were warmed before the later ones were captured: one
    # more sample each, which also sizes the rounds.
    sample_us = max(replay_us(n, reps[n]) for n in names)
    rounds = max(min_rounds, min(max_rounds, int(budget_us // max(sample_us, 1.0))))
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        events = []
        for name in names[k:] + names[:k]:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(reps[name]):
                graphs[name].replay()
            e.record()
            events.append((name, s, e))
        torch.cuda.synchronize()  # once per round: no idle gaps between samples
        for name, s, e in events:
            samples[name].append(s.elapsed_time(e) * 1e3 / (reps[name] * calls[name]))
    return {n: statistics.median(samples[n]) for n in names}


# The impl name of a candidate timed by time_cuda_after_kernel ("lowbit after
# a kernel"): its own timing mode, compared only with rows of the same mode
# (lowbit.kernels._report keys on this suffix).
AFTER_KERNEL = " after a kernel"


def time_cuda_after_kernel(
    candidates: dict[str, Sequence[Callable[[], object]]], device=None, **kwargs
) -> dict[str, float]:
    """Median microseconds of one call that follows an unrelated kernel, as a
    layer's GEMM follows the previous op, keyed by the candidate's name +
    AFTER_KERNEL: each call is preceded in its graph
    by a write of twice the L2 size (so the call finds neither its operands
    in L2 nor its launch overlapped with a GEMM of its own kind), and that
    write alone, timed in the same interleaved rounds, is subtracted.
    Back-to-back replays (`time_cuda_interleaved`) let a call's launch and
    fill overlap the previous call's tail; the two differ by up to ~30% on
    large shapes (issue #17), so the tables state both."""
    scratch = torch.empty(2 * max(l2_bytes(device), 1 << 20), dtype=torch.uint8, device=device or "cuda")

    def after(f):
        def call():
            scratch.fill_(1)
            return f()

        return call

    cands = {name: [after(f) for f in fns] for name, fns in candidates.items()}
    cands["(the write alone)"] = [lambda: scratch.fill_(1)]
    times = time_cuda_interleaved(cands, **kwargs)
    write_us = times.pop("(the write alone)")
    return {name + AFTER_KERNEL: us - write_us for name, us in times.items()}


def time_cpu(fn: Callable[[], object], *, warmup: int = 1, iters: int = 5) -> float:
    """Median microseconds of one call on the CPU."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


def copy_bandwidth(nbytes: int = 1 << 30, device=None) -> float:
    """Measured device-to-device copy bandwidth in bytes/s, counting bytes read
    plus bytes written (the floor every memory-bound kernel is judged by)."""
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=device or "cuda")
    src.random_()
    dst = torch.empty_like(src)
    us = time_cuda([lambda: dst.copy_(src)], warmup=3, iters=20, use_graph=False)
    return 2 * src.numel() / (us * 1e-6)


def write_table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """Markdown table of `rows` (list of dicts with the same keys)."""
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def bench_main(run: Callable[..., list[dict]], title: str, default_out, cuda_note=None):
    """The shared front of a package's ``benchmarks/run.py``: parses ``--device``,
    ``--quick``, ``--out``; runs ``run(device, quick=..., progress=...)`` (progress on
    stderr); names the device. Returns ``(rows, device, out_dir, header, tag)``: the
    markdown header (plus ``cuda_note(device)`` on a GPU) and a file-name tag."""
    import argparse
    import re
    import sys
    from pathlib import Path

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(default_out))
    args = ap.parse_args()
    dev = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run(dev, quick=args.quick, progress=lambda s: print(s, file=sys.stderr, flush=True))
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        header = f"# {title} on {name}\n\n" + (cuda_note(dev) if cuda_note else "")
    else:
        name = "cpu"
        header = f"# {title} on CPU ({torch.get_num_threads()} threads)\n\n"
    return rows, dev, out, header, re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
