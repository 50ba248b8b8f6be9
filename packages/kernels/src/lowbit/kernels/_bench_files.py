"""The files `lowbit bench --out DIR` writes: bench.json, bench.csv, bench.md
and one PNG plot per op; `--merge` keeps other packages' earlier rows."""

from __future__ import annotations

import json
from pathlib import Path

from . import _report as rep
from ._common import err
from ._env import device_line
from ._families import one_line


def merge_earlier(path: Path, report: dict) -> dict:
    """`--merge`: keep the rows of packages this run did not select from an
    earlier bench.json in the same folder (one package per command when a
    time limit forbids running them all at once)."""
    if not path.exists():
        return report
    try:
        old = json.loads(path.read_text())
        old_rows, old_pkgs = list(old["rows"]), list(old["packages"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        err(f"--merge: cannot read {path} ({one_line(e)}); not merged")
        return report
    now = {p["package"] for p in report["packages"]}
    kept_pkgs = [p for p in old_pkgs if p.get("package") not in now]
    if not kept_pkgs:
        return report
    kept = {p["package"] for p in kept_pkgs}
    old_dev = ((old.get("environment") or {}).get("device") or {}).get("name")
    new_dev = report["environment"]["device"].get("name")
    if old_dev != new_dev:
        err(f"--merge: {path} was measured on {old_dev}, this run on {new_dev}")
    merged = dict(report)
    merged["packages"] = kept_pkgs + report["packages"]
    merged["rows"] = [r for r in old_rows if r.get("package") in kept] + report["rows"]
    merged["merged"] = list(old.get("merged") or []) + [
        {"packages": sorted(kept), "date": old.get("date"), "command": old.get("command"),
         "device": old_dev}]
    return merged


def write_bench(out: Path, report: dict) -> list[Path]:
    """Write every file into `out`; the paths written."""
    written = [out / "bench.json", out / "bench.csv", out / "bench.md"]
    rep.write_json(written[0], report)
    rep.write_csv(written[1], report["rows"])
    plots = write_plots(out, report["rows"])
    written[2].write_text(bench_md(report, plots))
    return written + [out / name for name in plots.values()]


def write_plots(out: Path, rows: list[dict]) -> dict[tuple[str, str], str]:
    """One PNG per (package, op); {(package, op): file name} of those written."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        err("matplotlib is not installed: no PNG plots (pip install matplotlib)")
        return {}
    from . import _plot

    plots = {}
    for (pkg, op), grp in rep.groups(rows).items():
        name = _plot.plot_file(pkg, op)
        try:
            _plot.plot(out / name, pkg, op, grp)
        except Exception as e:  # a plot must never lose the tables
            err(f"plot {name} failed: {one_line(e)}")
            continue
        plots[(pkg, op)] = name
    return plots


def bench_md(report: dict, plots: dict) -> str:
    """bench.md: how it was measured, then a table (and plot) per op."""
    lines = md_header(report)
    current = None
    for (pkg, op), grp in rep.groups(report["rows"]).items():
        if pkg != current:
            lines += ["", f"## {pkg}"]
            current = pkg
        headers, table = rep.pivot(grp)
        lines += ["", f"### {op}", "", rep.md_table(headers, table).rstrip()]
        if (pkg, op) in plots:
            lines += ["", f"![{pkg} {op}]({plots[(pkg, op)]})"]
    notes = [(p["package"], p["error"] or p.get("note") or p["status"]) for p in report["packages"]
             if p["error"] or p.get("note") or p["status"] != "ok"]
    if notes:
        lines += ["", "## Not benchmarked or incomplete", ""]
        lines += [f"- {name}: {why}" for name, why in notes]
    return "\n".join(lines).rstrip() + "\n"


def md_header(report: dict) -> list[str]:
    env = report["environment"]
    pk = []
    for p in report["packages"]:
        if p["status"] == "ok":
            name = f"{p['distribution']} {p['version']}" if p["version"] else p["distribution"]
            pk.append(f"{name} (built for {p.get('cuda_archs', '?')})")
    merged = "".join(f"; {', '.join(m['packages'])} from `{m['command']}` on {m['date']}"
                     for m in report.get("merged", []))
    lines = [
        "# lowbit bench", "",
        f"Produced by `{report['command']}` on {report['date']} ({report['seconds']:.0f} s){merged}.",
        "", "| | |", "|---|---|",
        f"| device | {device_line(env['device'])} |",
        f"| torch / CUDA | {env['torch']} / {env['cuda'] or '-'} |",
        f"| packages | {'; '.join(pk) or 'none'} |",
    ]
    bw = report.get("copy_bandwidth_TBps")
    if bw:
        lines.append(f"| device copy bandwidth | {bw} TB/s (bytes read + written) |")
    return lines + [
        f"| timing | {report['timing']} |", "",
        "All rows: [bench.json](bench.json), [bench.csv](bench.csv). Each table: the metric per "
        "implementation; *lowbit µs* is the median time of one lowbit call; *vs best baseline* is "
        "the fastest baseline's time divided by lowbit's (>1 = lowbit faster; floors such as "
        "*copy floor* are bounds, not baselines). Columns marked * were measured in another unit "
        "and are shown in the op's unit through their time (same problem, same work).",
    ]
