"""Benchmark lowbit-nvfp4-quant and write results/<device>.{md,json,png}.

    python packages/nvfp4-quant/benchmarks/run.py [--device cuda] [--quick] [--out DIR]
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lowbit.nvfp4_quant import bench
from lowbit.testing.bench import bench_main, copy_bandwidth, write_table


def main() -> None:
    rows, dev, out, header, tag = bench_main(
        bench.run, "nvfp4-quant", Path(__file__).parent / "results",
        lambda d: f"D2D copy (1 GiB, read+write): {copy_bandwidth(device=d) * 1e-12:.2f} TB/s\n\n")
    # wide table: one line per (op, K, M): lowbit vs floor
    wide = []
    key = lambda r: (r["op"], r["shape"], r["M"])  # noqa: E731
    by = {}
    for r in rows:
        by.setdefault(key(r), {})[r["impl"]] = r
    for (op, shape, m), d in by.items():
        line = {"op": op, "shape": shape, "M": m}
        for impl, r in d.items():
            line[f"{impl} us"] = r["us"]
            line[f"{impl} {r['metric_name']}"] = r["metric"]
        if "lowbit" in d and "copy floor" in d:
            line["% of copy"] = 100.0 * d["copy floor"]["us"] / d["lowbit"]["us"]
        wide.append(line)
    (out / f"{tag}.json").write_text(json.dumps(rows, indent=1))
    (out / f"{tag}.md").write_text(header + write_table(wide))
    print(header + write_table(wide))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    ops = sorted({r["op"] for r in rows})
    fig, axes = plt.subplots(1, len(ops), figsize=(5 * len(ops), 4), squeeze=False)
    for ax, op in zip(axes[0], ops):
        for impl in sorted({r["impl"] for r in rows if r["op"] == op}):
            for shape in sorted({r["shape"] for r in rows if r["op"] == op}):
                pts = sorted((r["M"], r["metric"]) for r in rows
                             if r["op"] == op and r["impl"] == impl and r["shape"] == shape)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        linestyle="--" if "copy" in impl or "reference" in impl else "-",
                        label=f"{impl} {shape}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("M (rows)")
        ax.set_ylabel(rows[0]["metric_name"])
        ax.set_title(op, fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / f"{tag}.png", dpi=110)


if __name__ == "__main__":
    main()
