"""Benchmark lowbit-moe's routing helpers and write results/<device>.{md,json,png}.

    python packages/moe/benchmarks/run.py [--device cuda] [--quick] [--out DIR]
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lowbit.moe import bench
from lowbit.testing.bench import bench_main, write_table


def wide_table(rows: list[dict]) -> list[dict]:
    """One line per (op, model, M): lowbit vs the torch path."""
    by: dict = {}
    for r in rows:
        by.setdefault((r["op"], r["model"], r["M"]), {})[r["impl"]] = r
    out = []
    for (op, model, m), d in by.items():
        torch_impl = next(i for i in d if i != "lowbit")
        out.append({"op": op, "model": model, "tokens": m, "lowbit us": d["lowbit"]["us"],
                    "torch path": torch_impl, "torch us": d[torch_impl]["us"],
                    "speed-up": d[torch_impl]["us"] / d["lowbit"]["us"]})
    return out


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    ops = sorted({r["op"] for r in rows})
    fig, axes = plt.subplots(1, len(ops), figsize=(5.5 * len(ops), 4), squeeze=False)
    for ax, op in zip(axes[0], ops):
        for impl in sorted({r["impl"] for r in rows if r["op"] == op}):
            for model in sorted({r["model"] for r in rows}):
                pts = sorted((r["M"], r["us"]) for r in rows
                             if r["op"] == op and r["impl"] == impl and r["model"] == model)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                            linestyle="-" if impl == "lowbit" else "--", label=f"{impl} {model}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens")
        ax.set_ylabel("us")
        ax.set_title(op, fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    rows, dev, out, header, tag = bench_main(bench.run, "lowbit-moe routing helpers",
                                             Path(__file__).parent / "results")
    table = header + write_table(wide_table(rows))
    (out / f"{tag}.json").write_text(json.dumps(rows, indent=1))
    (out / f"{tag}.md").write_text(table)
    print(table)
    plot(rows, out / f"{tag}.png")


if __name__ == "__main__":
    main()
