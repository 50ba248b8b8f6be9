"""Benchmark cutlass_w4a8_mm against torch.mm (bf16 cuBLAS), torch._scaled_mm
(fp8 cuBLASLt rowwise) and the memory floor; writes results/ (json, md, png).

    python benchmarks/run.py [--schedules] [--quick] [--out DIR]
    python benchmarks/run.py --render results/w4a8_mm.json   # tables/plot only
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def table(rows: list[dict]) -> str:
    """One line per (shape, M): lowbit vs the baselines and the targets."""
    by = defaultdict(dict)
    for r in rows:
        by[(r.get("model", ""), r["shape"], r["M"])][r["impl"]] = r
    lines = ["| model | shape | M | lowbit µs | fp8 µs | bf16 µs | floor µs | vs fp8 | "
             "weight BW / copy BW | target | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (model, shape, M), d in by.items():
        if "lowbit" not in d:
            continue
        lo, fp8, bf = d["lowbit"]["us"], d["torch._scaled_mm fp8"]["us"], d["torch.mm bf16"]["us"]
        floor = d["copy floor"]["us"]
        frac = floor / lo
        speed = fp8 / lo
        if M <= 64:
            need = "≥70% BW" + (", ≥1.8× fp8" if "70b" in model else "")
            met = frac >= 0.70 and (speed >= 1.8 or "70b" not in model)
        elif M >= 2048:
            need, met = "≥ fp8", speed >= 1.0
        else:
            need, met = "-", None
        lines.append(f"| {model} | {shape} | {M} | {lo:.1f} | {fp8:.1f} | {bf:.1f} | {floor:.1f} | "
                     f"{speed:.2f}× | {100 * frac:.0f}% | {need} | "
                     f"{'' if met is None else ('yes' if met else 'NO')} |")
    return "\n".join(lines) + "\n"


def sweep_table(rows: list[dict]) -> str:
    """Every schedule's µs per (shape, M) (present when run with --schedules)."""
    by = defaultdict(dict)
    names = []
    for r in rows:
        if r["impl"].startswith("lowbit "):
            s = r["impl"].split(" ", 1)[1]
            if s not in names:
                names.append(s)
            by[(r.get("model", ""), r["shape"], r["M"])][s] = r["us"]
    if not by:
        return ""
    lines = ["| shape | M | " + " | ".join(names) + " | best |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for (model, shape, M), d in by.items():
        best = min(d, key=d.get)
        cells = [f"{d[n]:.1f}" if n in d else "-" for n in names]
        lines.append(f"| {shape} | {M} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = []
    for r in rows:
        key = (r.get("model", ""), r["shape"])
        if key not in shapes:
            shapes.append(key)
    fig, axes = plt.subplots(2, (len(shapes) + 1) // 2, figsize=(4 * ((len(shapes) + 1) // 2), 7),
                             squeeze=False)
    for ax, (model, shape) in zip(axes.flat, shapes):
        sel = [r for r in rows if r.get("model", "") == model and r["shape"] == shape]
        fp8 = {r["M"]: r["us"] for r in sel if r["impl"] == "torch._scaled_mm fp8"}
        for impl, style in [("lowbit", "o-"), ("torch.mm bf16", "s--"), ("copy floor", ":")]:
            # The floor counts weight bytes only: meaningful where M is small.
            pts = sorted((r["M"], fp8[r["M"]] / r["us"]) for r in sel
                         if r["impl"] == impl and (impl != "copy floor" or r["M"] <= 128))
            if pts:
                ax.plot(*zip(*pts), style, label=impl + (" (M ≤ 128)" if impl == "copy floor" else ""))
        ax.set_ylim(0, 4)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{model} {shape}", fontsize=9)
        ax.set_xlabel("M (tokens)")
        ax.set_ylabel("speed-up vs fp8 cuBLASLt")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("W4A8 (int4 x fp8) vs fp8 rowwise / bf16, H100 SXM")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(rows: list[dict], out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "w4a8_mm.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = [f"# cutlass_w4a8_mm benchmark\n\n{meta}\n", table(rows)]
    sw = sweep_table(rows)
    if sw:
        md += ["\n## Every schedule (µs)\n", sw]
    (out / "w4a8_mm.md").write_text("\n".join(md))
    try:
        plot(rows, out / "w4a8_mm.png")
    except ImportError as e:
        print(f"no plot: {e}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", action="store_true", help="also time every schedule")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", nargs="*")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--render", type=Path, help="re-render tables/plot from a json")
    a = ap.parse_args()
    if a.render:
        d = json.loads(a.render.read_text())
        write(d["rows"], a.out, d["meta"])
        return
    import torch

    import lowbit.w4a8_mm as w4

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    meta = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
            "torch": torch.__version__, "build": w4.build_info(),
            "timing": "lowbit.testing.bench.time_cuda_interleaved: per (shape, M) every "
                      "implementation is a CUDA graph over rotating weights, warmed up, then "
                      "sampled in rounds of rotating order; median µs per call"}
    rows = w4.bench.run(dev, models=a.models, quick=a.quick, schedules=a.schedules,
                        progress=lambda s: print(s, flush=True))
    write(rows, a.out, meta)
    print(table(rows))


if __name__ == "__main__":
    main()
