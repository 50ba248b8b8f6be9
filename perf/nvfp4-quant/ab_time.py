"""Same-device A/B of the NVFP4 quant kernels: a baseline build against the current one.

    python perf/nvfp4-quant/ab_time.py [--base .carry/ab/nvfp4_quant_base] [--rounds 2] [--out FILE]

"new" is whichever lowbit.nvfp4_quant is importable (perf/device/gpu_check.sh's PYTHONPATH:
the working tree's sources with the carried .so); "base" is the same package unpacked from a
wheel built at an older commit (its directory is put first on PYTHONPATH). Two builds cannot
share one process (they register the same op namespace), so every measurement is a
subprocess; the builds alternate (base, new, base, new, ...) so that clock drift hits both.

Each worker times the four ops at the issue-17 sizes (CUDA graph of 20 calls over 4
rotating inputs > L2, median of 15 replays, µs per call) and, in the first round, writes
the output bytes of every op for fixed inputs (normal, wide, heavy-tailed, zeros, specials;
fp16 and bf16) to a scratch directory; the parent compares the builds' bytes exactly and
prints one table: µs per build, speed-up, % of a device copy of the same bytes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SIZES = [(16384, 7168), (16384, 4096), (4096, 7168), (1024, 7168)]  # (M rows, K)
OPS = ["dense", "silu_dense", "experts", "silu_experts"]
E = 256


# ------------------------------------------------------------------ worker
def _offsets(m, device):
    import torch

    counts = torch.full((E,), m // E, dtype=torch.int32)
    counts[: m % E] += 1
    off = torch.zeros(E + 1, dtype=torch.int32)
    off[1:] = counts.cumsum(0)
    sfo = torch.zeros(E + 1, dtype=torch.int32)
    sfo[1:] = ((counts + 127) // 128 * 128).cumsum(0)
    return off.to(device), sfo.to(device), int(sfo[-1])


def _call(op, x, m, k, gs1, gse, off, sfo, sf_rows, fill=None):
    """One call of `op` on x ([m, k] or [m, 2k]); returns (codes, scales) buffers
    (filled with `fill` first when given: a byte no build writes then compares equal)."""
    import torch

    ops = torch.ops.lowbit_nvfp4_quant
    new = (lambda *s: torch.full(s, fill, dtype=torch.uint8, device=x.device)) if fill is not None else (
        lambda *s: torch.empty(s, dtype=torch.uint8, device=x.device))
    out = new(m, k // 2)
    kp = (k // 16 + 3) // 4 * 4
    if op in ("dense", "silu_dense"):
        sf = new((m + 127) // 128 * 128, kp)
        if op == "dense":
            ops.scaled_fp4_quant.out(x, gs1, True, output=out, output_scale=sf)
        else:
            ops.silu_and_mul_nvfp4_quant(out, sf, x, gs1)
    else:
        sf = new(sf_rows, kp)
        f = ops.scaled_fp4_experts_quant if op == "experts" else ops.silu_and_mul_scaled_fp4_experts_quant
        f(out, sf, x, gse, off, sfo)
    return out, sf


def _bytes_moved(op, m, k, sf_rows):
    kp = (k // 16 + 3) // 4 * 4
    rows = (m + 127) // 128 * 128 if op in ("dense", "silu_dense") else sf_rows
    return m * k * 2 * (2 if "silu" in op else 1) + m * k // 2 + rows * kp


def _graph_us(fn, xs, reps=20, samples=15):
    import torch

    for x in xs:
        fn(x)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(reps):
            fn(xs[i % len(xs)])
    ts = []
    for _ in range(samples):
        a, b = torch.cuda.Event(True), torch.cuda.Event(True)
        a.record()
        g.replay()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1000 / reps)
    return sorted(ts)[len(ts) // 2]


def _copy_us(nbytes):
    import torch

    half = nbytes // 2
    srcs = [torch.empty(half, dtype=torch.uint8, device="cuda") for _ in range(4)]
    dst = torch.empty(half, dtype=torch.uint8, device="cuda")
    return _graph_us(lambda s: dst.copy_(s), srcs)


def _time_all(with_copy):
    import torch

    res = {}
    gs1 = torch.full((1,), 100.0, device="cuda")
    gse = torch.full((E,), 100.0, device="cuda")
    for m, k in SIZES:
        off, sfo, sf_rows = _offsets(m, "cuda")
        for op in OPS:
            cols = 2 * k if "silu" in op else k
            xs = [torch.randn(m, cols, dtype=torch.bfloat16, device="cuda") for _ in range(4)]
            fn = lambda x, op=op: _call(op, x, m, k, gs1, gse, off, sfo, sf_rows)  # noqa: E731
            key = f"{op} M={m} K={k}"
            res[key] = {"us": _graph_us(fn, xs), "bytes": _bytes_moved(op, m, k, sf_rows)}
            if with_copy:
                res[key]["copy_us"] = _copy_us(res[key]["bytes"])
            del xs
    return res


def _inputs(m, cols, dtype, kind, seed):
    """Fixed CPU-generated inputs (the same in both workers)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, cols, generator=g)
    if kind == "wide":
        x = x * 8.0
    elif kind == "heavy":  # log-normal magnitudes over ~2^-12 .. 2^12
        x = x * torch.exp(torch.randn(m, cols, generator=g) * 2.5)
    elif kind == "zeros":
        x[::3] = 0.0
    elif kind == "specials":
        flat = x.view(-1)
        idx = torch.randperm(flat.numel(), generator=g)[: flat.numel() // 50]  # distinct: a
        # repeated index would make the parallel scatter below order-dependent
        vals = torch.tensor([float("nan"), float("inf"), -float("inf"), -100.0, -90.0, -88.5,
                             -20.0, -14.0, 1e-30, -1e-30, 65504.0, 3e38])
        flat[idx] = vals[torch.randint(0, len(vals), idx.shape, generator=g)]
    return x.to(dtype).cuda()


def _dump_bytes(path):
    import torch

    m, k = 2048, 7168
    gs1 = torch.full((1,), 37.5, device="cuda")
    gse = torch.linspace(0.5, 900.0, E, device="cuda")
    off, sfo, sf_rows = _offsets(m, "cuda")
    saved = {}
    for dtype in (torch.bfloat16, torch.float16):
        for kind in ("normal", "wide", "heavy", "zeros", "specials"):
            for op in OPS:
                cols = 2 * k if "silu" in op else k
                x = _inputs(m, cols, dtype, kind, seed=zlib.crc32(f"{kind} {op}".encode()) % 1000 + 17)
                out, sf = _call(op, x, m, k, gs1, gse, off, sfo, sf_rows, fill=0xAB)
                saved[f"{op} {str(dtype)[6:]} {kind}"] = (out.cpu(), sf.cpu())
    torch.save(saved, path)


def worker(name, dump, with_copy):
    import torch
    import lowbit.nvfp4_quant as q

    where = os.path.dirname(q.__file__)
    if dump:
        _dump_bytes(dump)
    res = _time_all(with_copy)
    print(json.dumps({"name": name, "module": where, "device": torch.cuda.get_device_name(),
                      "res": res}))


# ------------------------------------------------------------------ parent
def run_worker(name, base_dir, dump, with_copy):
    env = dict(os.environ)
    if name == "base":
        env["PYTHONPATH"] = base_dir + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name]
    if dump:
        cmd += ["--dump", dump]
    if with_copy:
        cmd += ["--copy"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"worker {name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare_bytes(a, b):
    import torch

    da, db = torch.load(a), torch.load(b)
    lines, bad = [], 0
    for key in da:
        (oa, sa), (ob, sb) = da[key], db[key]
        nc = int((oa != ob).sum())
        ns = int((sa != sb).sum())
        bad += nc + ns
        if nc or ns:
            lines.append(f"  DIFF {key}: {nc} code bytes, {ns} scale bytes differ")
    lines.append(f"bytes: {len(da)} cases, {'IDENTICAL' if bad == 0 else f'{bad} bytes differ'}")
    return lines


def table(runs):
    by = {"base": [], "new": []}
    for r in runs:
        by[r["name"]].append(r["res"])
    copy = {k: v["copy_us"] for r in by["new"] for k, v in r.items() if "copy_us" in v}
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    rows = ["| case | base µs | new µs | speed-up | base % of copy | new % of copy |",
            "|---|---|---|---|---|---|"]
    for key in by["new"][0]:
        b = med([r[key]["us"] for r in by["base"]])
        n = med([r[key]["us"] for r in by["new"]])
        c = copy.get(key)
        pc = lambda t: f"{100 * c / t:.1f}" if c else "-"  # noqa: E731
        rows.append(f"| {key} | {b:.1f} | {n:.1f} | {b / n:.2f}x | {pc(b)} | {pc(n)} |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--dump")
    ap.add_argument("--copy", action="store_true")
    ap.add_argument("--base", default=os.path.join(ROOT, ".carry", "ab", "nvfp4_quant_base"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.dump, a.copy)
    tmp = tempfile.mkdtemp()
    runs = []
    for i in range(a.rounds):
        for name in ("base", "new"):
            dump = os.path.join(tmp, f"{name}.pt") if i == 0 else None
            r = run_worker(name, a.base, dump, with_copy=(name == "new" and i == 0))
            print(f"round {i} {name}: {r['module']}", flush=True)
            runs.append(r)
    lines = [f"# nvfp4-quant A/B on {runs[0]['device']} (bf16; experts E={E}, even split;"
             " CUDA graph of 20 calls, 4 rotating inputs, median of 15 replays, median over"
             f" {a.rounds} alternating rounds)", ""]
    lines += table(runs) + [""]
    lines += compare_bytes(os.path.join(tmp, "base.pt"), os.path.join(tmp, "new.pt"))
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
