"""Tables (terminal and Markdown) and CSV/JSON files of `lowbit` (plots: _plot.py)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

ROW_FIELDS = ("package", "op", "shape", "M", "impl", "us", "metric", "metric_name")
CHECK_FIELDS = ("package", "op", "problem", "passed", "metric", "value", "limit")


def fmt_num(v) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == 0:
            return "0"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def text_table(headers, rows, *, indent: str = "") -> str:
    """Aligned plain-text table; numbers right-aligned."""
    cells = [[fmt_num(c) for c in r] for r in rows]
    widths = [max([len(str(h))] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
                   for r in rows if r[i] not in (None, "")) and rows for i in range(len(headers))]

    def line(vals):
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)]
        return (indent + "  ".join(out)).rstrip()

    sep = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line([str(h) for h in headers]), sep] + [line(r) for r in cells]) + "\n"


def md_table(headers, rows) -> str:
    def esc(v):
        return fmt_num(v).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |",
             "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- bench rows

def is_floor(impl: str) -> bool:
    """'copy floor' and the like are bounds, not competing implementations."""
    return "floor" in impl.lower() or "roofline" in impl.lower()


def groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows by (package, op), in first-seen order."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["package"], r["op"]), []).append(r)
    return out


def is_lowbit(impl: str) -> bool:
    """'lowbit', or a variant such as 'lowbit (16 threads)'."""
    return impl == "lowbit" or impl.startswith("lowbit ")


def is_after_kernel(impl: str) -> bool:
    """A row timed after an unrelated kernel (lowbit.testing.bench.AFTER_KERNEL,
    spelled here because this module stays torch-free; test_bench ties the
    two), not back to back: compared only with rows of its own mode."""
    return impl.endswith(" after a kernel")


def _unit_of(rows: list[dict]) -> str:
    """lowbit's metric_name among `rows`, else the most common one."""
    lb = [r["metric_name"] for r in rows if is_lowbit(r["impl"])]
    names = lb or [r["metric_name"] for r in rows]
    return max(dict.fromkeys(names), key=names.count)


def harmonize(rows: list[dict]) -> tuple[list[dict], list[str], set[str]]:
    """Rows of one (package, op) with one unit per case (model, shape, M):
    lowbit's unit there.

    A row measured in another unit (a copy floor in TB/s beside GEMMs in
    TFLOP/s) solves the same problem as its neighbours of the same case, so the
    work is the same and the metric scales with 1/time:
    metric = ref.metric * ref.us / row.us. Returns (rows, units in first-seen
    order, converted impls); a row with no reference to convert through keeps
    its own unit."""
    cases: dict[tuple, list[dict]] = {}
    for r in rows:
        cases.setdefault(_case(r), []).append(r)
    out, units, converted = [], {}, set()
    for case_rows in cases.values():
        unit = _unit_of(case_rows)
        refs = [r for r in case_rows
                if r["metric_name"] == unit and r["us"] > 0 and r["metric"] == r["metric"]]
        ref = next((r for r in refs if is_lowbit(r["impl"])), refs[0] if refs else None)
        for r in case_rows:
            if r["metric_name"] != unit and ref is not None and r["us"] > 0:
                r = dict(r, metric=ref["metric"] * ref["us"] / r["us"], metric_name=unit)
                converted.add(r["impl"])
            units[r["metric_name"]] = None
            out.append(r)
    return out, list(units), converted


def _case(r) -> tuple:
    return (r.get("model") or "", r["shape"], r["M"])


def label(r) -> str:
    """The shape as a reader wants it: 'Llama-3-8B N=4096 K=4096' when the row names its model."""
    return f"{r['model']} {r['shape']}" if r.get("model") else r["shape"]


def pivot(rows: list[dict]) -> tuple[list[str], list[list]]:
    """One (package, op)'s long rows -> table: shape, M, metric per impl (in
    the op's unit; converted impls marked *), lowbit µs, speed-up of lowbit
    over the fastest baseline."""
    rows, units, converted = harmonize(rows)
    unit = units[0] if len(units) == 1 else None  # else every cell carries its unit
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    # The speed-up compares back-to-back timings only (the after-a-kernel
    # rows are columns of their own).
    ours = next((i for i in impls if is_lowbit(i) and not is_after_kernel(i)), None)
    has_lowbit = ours is not None
    baselines = [i for i in impls if not is_lowbit(i) and not is_floor(i) and not is_after_kernel(i)]
    headers = ["shape", "M"] + [(f"{i} {unit}" if unit else i) + ("*" if i in converted else "")
                                for i in impls]
    if has_lowbit:
        headers.append("lowbit µs")
        if baselines:
            headers.append("vs best baseline")
    table: dict[tuple, dict] = {}
    for r in rows:
        table.setdefault(_case(r), {"label": label(r)})[r["impl"]] = r
    out = []
    for (_, _, m), by_impl in table.items():
        line = [by_impl["label"], m]
        for i in impls:
            r = by_impl.get(i)
            if r is None:
                line.append("")
            else:
                line.append(r["metric"] if unit else f"{fmt_num(r['metric'])} {r['metric_name']}")
        if has_lowbit:
            lb = by_impl.get(ours)
            line.append(lb["us"] if lb else "")
            if baselines:
                base = [by_impl[b]["us"] for b in baselines if b in by_impl and by_impl[b]["us"] > 0]
                line.append(f"{min(base) / lb['us']:.2f}x" if lb and base and lb["us"] > 0 else "")
        out.append(line)
    return headers, out


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    extra = sorted({k for r in rows for k in r} - set(ROW_FIELDS))  # e.g. model, weight_tbps
    w = csv.DictWriter(buf, fieldnames=[*ROW_FIELDS, *extra], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, default=str) + "\n")
