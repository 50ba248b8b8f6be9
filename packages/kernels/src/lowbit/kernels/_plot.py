"""PNG plots of `lowbit bench`: one figure per (package, op), one panel per
shape, x = tokens M on a log axis. With baselines the y axis is lowbit's
speed-up over the fastest baseline at each M (log axis, 1 = parity), so where
lowbit wins and loses shows at a glance at every M; a floor (copy bound) is
drawn dashed as the speed-up it would allow. Without baselines: µs per call."""

from __future__ import annotations

import re
from pathlib import Path

from ._report import is_after_kernel, is_floor, is_lowbit, label


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")


def plot_file(package: str, op: str) -> str:
    return f"{slug(package)}.{slug(op)}.png"


def speedup_series(rows: list[dict]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{shape: {impl: [(M, best baseline µs / impl µs)]}} for lowbit and the
    floors, each against the baselines of its own timing mode (back to back,
    or after a kernel); empty when there is no lowbit row or no baseline."""
    baselines = {r["impl"] for r in rows if not is_lowbit(r["impl"]) and not is_floor(r["impl"])}
    if not baselines or not any(is_lowbit(r["impl"]) for r in rows):
        return {}
    best: dict[tuple, float] = {}
    for r in rows:
        if r["impl"] in baselines and r["us"] > 0:
            key = (label(r), r["M"], is_after_kernel(r["impl"]))
            best[key] = min(best.get(key, r["us"]), r["us"])
    out: dict[str, dict[str, list]] = {}
    for r in rows:
        key = (label(r), r["M"], is_after_kernel(r["impl"]))
        if r["impl"] not in baselines and key in best and r["us"] > 0:
            out.setdefault(key[0], {}).setdefault(r["impl"], []).append((r["M"], best[key] / r["us"]))
    return out


def time_series(rows: list[dict]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{shape: {impl: [(M, µs)]}}."""
    out: dict[str, dict[str, list]] = {}
    for r in rows:
        out.setdefault(label(r), {}).setdefault(r["impl"], []).append((r["M"], r["us"]))
    return out


def plot(path: Path, package: str, op: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = speedup_series(rows)
    speedup = bool(series)
    series = series or time_series(rows)
    ncols = min(4, len(series))
    nrows = -(-len(series) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows + 0.6),
                             squeeze=False, layout="constrained")
    impls = list(dict.fromkeys(i for by_impl in series.values() for i in by_impl))
    colors = {i: f"C{k % 10}" for k, i in enumerate(impls)}
    for ax, (shape, by_impl) in zip(axes.flat, series.items()):
        draw_panel(ax, shape, by_impl, colors, speedup)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    what = "speed-up of lowbit over the fastest baseline" if speedup else "time per call"
    fig.suptitle(f"{package} · {op}: {what}", fontsize=11)
    handles, labels = legend_entries(axes)
    try:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=8)
    except ValueError:  # matplotlib < 3.7 has no "outside" locations
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_panel(ax, shape: str, by_impl: dict, colors: dict, speedup: bool) -> None:
    from matplotlib import ticker

    ms = sorted({m for pts in by_impl.values() for m, _ in pts})
    for impl, pts in by_impl.items():
        pts = sorted(pts)
        name = impl + (" (bound)" if is_floor(impl) and speedup else "")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                color=colors[impl], linestyle="--" if is_floor(impl) else "-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if speedup:
        ax.axhline(1.0, color="0.3", linewidth=0.8, label="fastest baseline")
        # A bound far above (a copy floor at compute-bound M) must not flatten
        # lowbit's curve: the axis spans lowbit and parity; the bound is clipped.
        real = [y for impl, pts in by_impl.items() if not is_floor(impl) for _, y in pts] + [1.0]
        ax.set_ylim(min(real) / 1.5, max(real) * 2.0)
    ax.set_xticks(ms, [f"{m // 1024}k" if m >= 1024 and m % 1024 == 0 else str(m) for m in ms])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    # Log y ticks at 1, 2, 5 x 10^k as plain numbers (0.5, 1, 2): ratios read directly.
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    ax.set_title(shape, fontsize=9)
    ax.set_xlabel("M (tokens)", fontsize=8)
    ax.set_ylabel("× fastest baseline (higher is better)" if speedup
                  else "µs per call (lower is better)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3, which="both")


def legend_entries(axes) -> tuple[list, list]:
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    return handles, labels
