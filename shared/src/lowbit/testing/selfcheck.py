"""The row every family's ``selfcheck.run`` returns (docs/DEVELOPING.md, the
``lowbit check`` protocol). Imported at run time: no pytest here."""

from __future__ import annotations


def row(op: str, problem: str, value: float, limit: float, metric: str = "relative error") -> dict:
    """One checked op: passed when value <= limit."""
    return {"op": op, "problem": problem, "passed": bool(value <= limit), "metric": metric,
            "value": float(value), "limit": float(limit)}
