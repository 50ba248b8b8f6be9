"""Benchmark lowbit-mxfp4 and write results/<device>.{md,json,png}.

    python packages/mxfp4/benchmarks/run.py [--device cuda] [--quick] [--out DIR]
"""

from __future__ import annotations

import json
from pathlib import Path

from lowbit.mxfp4 import bench
from lowbit.testing.bench import bench_main, copy_bandwidth, write_table


def wide_rows(rows: list[dict]) -> list[dict]:
    """One line per (op, model, shape, tokens): every impl's us; quant: % of
    copy; grouped GEMM: speed-up over bf16 torch._grouped_mm and over NVFP4,
    TB/s of the touched weight bytes."""
    by: dict = {}
    for r in rows:
        by.setdefault((r["op"], r.get("model", ""), r["shape"], r.get("tokens", r["M"])), {})[r["impl"]] = r
    wide = []
    for (op, model, shape, t), d in by.items():
        line = {"op": op, "model": model, "shape": shape, "tokens": t}
        if "experts" in d.get("lowbit", {}):
            line["experts"] = d["lowbit"]["experts"]
        for impl, r in d.items():
            line[f"{impl} us"] = round(r["us"], 1)
        low = d.get("lowbit")
        if low and "copy floor" in d and low["metric_name"] == "TB/s":
            line["lowbit TB/s"] = round(low["metric"], 2)
            line["% of copy"] = round(100.0 * d["copy floor"]["us"] / low["us"], 1)
        if low and "weight_tbps" in low:
            line["weight TB/s"] = round(low["weight_tbps"], 2)
            if "copy floor" in d:  # the touched weight bytes at copy bandwidth
                line["% of copy"] = round(100.0 * d["copy floor"]["us"] / low["us"], 1)
            for impl, label in (("torch._grouped_mm bf16", "x bf16"), ("nvfp4 group mm (lowbit)", "x nvfp4")):
                if impl in d:
                    line[label] = round(d[impl]["us"] / low["us"], 2)
        wide.append(line)
    return wide


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    groups = sorted({(r["op"], r.get("model", ""), r["shape"]) for r in rows})
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.6), squeeze=False)
    for ax, (op, model, shape) in zip(axes[0], groups):
        sel = [r for r in rows if (r["op"], r.get("model", ""), r["shape"]) == (op, model, shape)]
        for impl in sorted({r["impl"] for r in sel}):
            pts = sorted((r.get("tokens", r["M"]), r["us"]) for r in sel if r["impl"] == impl)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    linestyle="--" if "copy" in impl else "-", label=impl)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens")
        ax.set_ylabel("us")
        ax.set_title(f"{op}\n{model} {shape}", fontsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def tables(rows: list[dict]) -> str:
    """One markdown table per kind of op (the quant ops and the grouped GEMM
    have different columns), each with the union of its rows' columns."""
    wide, out = wide_rows(rows), []
    for kind in ("quant", "group_mm"):
        sel = [w for w in wide if ("group_mm" in w["op"]) == (kind == "group_mm")]
        cols = list(dict.fromkeys(k for w in sel for k in w))
        out.append(write_table(sel, cols))
    return "\n".join(t for t in out if t)


def main() -> None:
    rows, dev, out, header, tag = bench_main(
        bench.run, "mxfp4", Path(__file__).parent / "results",
        lambda d: f"D2D copy (1 GiB, read+write): {copy_bandwidth(device=d) * 1e-12:.2f} TB/s\n\n")
    table = header + tables(rows)
    (out / f"{tag}.json").write_text(json.dumps(rows, indent=1))
    (out / f"{tag}.md").write_text(table)
    print(table)
    plot(rows, out / f"{tag}.png")


if __name__ == "__main__":
    main()
