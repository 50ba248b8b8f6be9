"""Benchmark cutlass_w4a8_mm against torch.mm (bf16 cuBLAS), torch._scaled_mm
(fp8 cuBLASLt rowwise) and the memory floor, and cutlass_w4a8_moe_mm against
torch._scaled_grouped_mm (fp8 rowwise), torch._grouped_mm (bf16) and a copy
of the weight bytes it touches; writes results/ (json, md, png): the tables
and plots of the package README (w4a8_mm.* dense, w4a8_moe_mm.* grouped).

    python benchmarks/run.py [--quick] [--models M ...] [--out DIR]
        (--models: dense and/or MoE model names; only the files of the kinds run are written)
    python benchmarks/run.py --render results/w4a8_mm.json   # table/plot only
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def table(rows: list[dict]) -> str:
    """One line per (shape, M): lowbit vs the baselines and the weight floor."""
    from lowbit.testing.bench import AFTER_KERNEL
    by = defaultdict(dict)
    for r in rows:
        by[(r.get("model", ""), r["shape"], r["M"])][r["impl"]] = r
    # vs fp8 after a kernel: each call following an unrelated kernel that
    # flushes L2 instead of back to back (lowbit.testing.bench.time_cuda_after_kernel).
    lines = ["| model | shape | M | lowbit µs | fp8 µs | bf16 µs | floor µs | vs fp8 | "
             f"weight BW / copy BW | vs fp8{AFTER_KERNEL} |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (model, shape, M), d in by.items():
        if "lowbit" not in d:
            continue
        lo, fp8, bf = d["lowbit"]["us"], d["torch._scaled_mm fp8"]["us"], d["torch.mm bf16"]["us"]
        floor = d["copy floor"]["us"]
        after = ""
        lb_after, fp8_after = "lowbit" + AFTER_KERNEL, "torch._scaled_mm fp8" + AFTER_KERNEL
        if lb_after in d and fp8_after in d:
            after = f"{d[fp8_after]['us'] / d[lb_after]['us']:.2f}×"
        lines.append(f"| {model} | {shape} | {M} | {lo:.1f} | {fp8:.1f} | {bf:.1f} | {floor:.1f} | "
                     f"{fp8 / lo:.2f}× | {100 * floor / lo:.0f}% | {after} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> str:
    """The README table: per layer and M, lowbit µs and its speed-up over fp8."""
    us = defaultdict(dict)
    for r in rows:
        us[(r.get("model", ""), r["shape"], r["M"])][r["impl"]] = r["us"]
    ms = sorted({M for (_, _, M), d in us.items() if "lowbit" in d})
    layers = list(dict.fromkeys((model, shape) for (model, shape, _) in us))
    lines = ["| model | layer | " + " | ".join(f"M={M}" for M in ms) + " |",
             "|---|---|" + "---|" * len(ms)]
    for model, shape in layers:
        cells = []
        for M in ms:
            d = us.get((model, shape, M), {})
            lo, fp8 = d.get("lowbit"), d.get("torch._scaled_mm fp8")
            cells.append(f"{lo:.1f} ({fp8 / lo:.2f}×)" if lo and fp8 else "-")
        lines.append(f"| {model} | {shape} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, device: str) -> None:
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
    _finish(fig, axes, f"W4A8 (int4 x fp8) vs fp8 rowwise / bf16, {device}", path)


def _finish(fig, axes, title: str, path: Path) -> None:
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


MOE_IMPLS = ("lowbit", "torch._scaled_grouped_mm fp8", "torch._grouped_mm bf16", "clone (touched weights)",
             "copy floor")


def moe_table(rows: list[dict]) -> str:
    """Grouped GEMM: one line per (model, GEMM, tokens), µs of every
    implementation, lowbit's speed-up over fp8 grouped and over the faster of
    fp8 / bf16 grouped, and its weight bandwidth as a share of the copy's."""
    by = defaultdict(dict)
    for r in rows:
        by[(r["model"], r["shape"], r["tokens"])][r["impl"]] = r
    lines = ["| model | GEMM | tokens | experts | " + " | ".join(f"{i} µs" for i in MOE_IMPLS) +
             " | vs fp8 | vs best torch | weight BW vs clone |",
             "|---|---|---|---|" + "---|" * (len(MOE_IMPLS) + 3)]
    for (model, shape, t), d in by.items():
        d.setdefault("lowbit", d.get("lowbit (CPU reference)"))
        if d["lowbit"] is None:
            continue
        us = {i: d[i]["us"] for i in MOE_IMPLS if i in d}
        lo = us["lowbit"]
        torch_best = min((us[i] for i in MOE_IMPLS[1:3] if i in us), default=None)
        fp8 = us.get(MOE_IMPLS[1])
        clone = us.get("clone (touched weights)")
        cells = [f"{us[i]:.1f}" if i in us else "-" for i in MOE_IMPLS]
        lines.append(f"| {model} | {shape} | {t} | {d['lowbit']['experts']:.0f} | " + " | ".join(cells) +
                     f" | {f'{fp8 / lo:.2f}×' if fp8 else '-'} | "
                     f"{f'{torch_best / lo:.2f}×' if torch_best else '-'} | "
                     f"{f'{100 * clone / (2 * lo):.0f}%' if clone else '-'} |")
    return "\n".join(lines) + "\n"


def moe_plot(rows: list[dict], path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys((r["model"], r["shape"]) for r in rows))
    cols = (len(shapes) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(4 * cols, 7), squeeze=False)
    for ax, (model, shape) in zip(axes.flat, shapes):
        sel = [r for r in rows if r["model"] == model and r["shape"] == shape]
        for impl, style in zip(MOE_IMPLS, ["o-", "s--", "^--", ":", "-."]):
            pts = sorted((r["tokens"], r["us"]) for r in sel if r["impl"] == impl)
            if pts:
                ax.plot(*zip(*pts), style, label=impl)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{model} {shape}", fontsize=9)
        ax.set_xlabel("tokens")
        ax.set_ylabel("µs per call")
    _finish(fig, axes, f"W4A8 grouped GEMM (cutlass_w4a8_moe_mm) vs torch grouped GEMMs, {device}", path)


def write(rows: list[dict], out: Path, meta: dict) -> None:
    """w4a8_mm.* from the dense rows, w4a8_moe_mm.* from the grouped rows
    (each only when the run has such rows)."""
    out.mkdir(parents=True, exist_ok=True)
    dense = [r for r in rows if r["op"] == "cutlass_w4a8_mm"]
    moe = [r for r in rows if r["op"] == "cutlass_w4a8_moe_mm"]
    if dense:
        (out / "w4a8_mm.json").write_text(json.dumps({"meta": meta, "rows": dense}, indent=1))
        md = [f"# cutlass_w4a8_mm benchmark\n\n{meta}\n",
              "lowbit µs (speed-up over fp8 cuBLASLt rowwise):\n", summary(dense),
              "\nEvery implementation:\n", table(dense)]
        (out / "w4a8_mm.md").write_text("\n".join(md))
    if moe:
        (out / "w4a8_moe_mm.json").write_text(json.dumps({"meta": meta, "rows": moe}, indent=1))
        md = [f"# cutlass_w4a8_moe_mm benchmark\n\n{meta}\n",
              "Uniform random top-k routing (docs/SPEC-MOE.md §5.11 (a)), rotating routings; "
              "experts = mean non-empty experts per call. 'weight BW vs clone': lowbit's weight bytes "
              "per µs over the clone's (the clone reads and writes them).\n", moe_table(moe)]
        (out / "w4a8_moe_mm.md").write_text("\n".join(md))
    try:
        if dense:
            plot(dense, out / "w4a8_mm.png", meta.get("device", ""))
        if moe:
            moe_plot(moe, out / "w4a8_moe_mm.png", meta.get("device", ""))
    except ImportError as e:
        print(f"no plot: {e}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
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
    from lowbit.testing.shapes import canonical_model

    # The grouped GEMM first, then the dense one; each kind's files are
    # written as soon as it is measured (a run cut short keeps the first).
    names = [canonical_model(m) or m for m in (a.models or w4.bench.DEFAULT_MOE_MODELS +
                                                  w4.bench.DEFAULT_MODELS)]
    for group in ([m for m in names if m in w4.bench.MOE_MODELS],
                  [m for m in names if m not in w4.bench.MOE_MODELS]):
        if not group:
            continue
        rows = w4.bench.run(dev, models=group, quick=a.quick, progress=lambda s: print(s, flush=True))
        write(rows, a.out, meta)
        dense = [r for r in rows if r["op"] == "cutlass_w4a8_mm"]
        moe = [r for r in rows if r["op"] == "cutlass_w4a8_moe_mm"]
        print((table(dense) if dense else "") + (moe_table(moe) if moe else ""), flush=True)
        if dev.type == "cpu":
            break  # the CPU rows do not depend on the models


if __name__ == "__main__":
    main()
