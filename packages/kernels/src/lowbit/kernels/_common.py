"""What `lowbit check`, `lowbit bench` and `lowbit info` share: package
selection, the per-package status entry, error lines, the output folder."""

from __future__ import annotations

import datetime as _dt
import re
import shlex
import sys
import traceback
from pathlib import Path

from . import _families
from ._env import UserError
from ._families import Family, normalize_name, one_line

# Exit statuses: 0 ok, 1 a check/benchmark failed, 2 a mistake on the command line.
EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def split(values) -> list[str]:
    """['a,b', 'c'] -> ['a', 'b', 'c'] (repeated and comma-separated options)."""
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


def select(requested) -> tuple[list[tuple[str, str]], set[str]]:
    """The (name, module) specs to run and the names the user asked for explicitly."""
    specs = _families.family_specs()
    names = [normalize_name(r) for r in split(requested)]
    known = [n for n, _ in specs]
    for raw, n in zip(split(requested), names):
        if n not in known:
            raise UserError(f"unknown package '{raw}' (known: {', '.join(known)})")
    if not names:
        return list(specs), set()
    return [s for s in specs if s[0] in names], set(names)


def out_dir(path: Path | None) -> Path | None:
    """`--out DIR`, created; a UserError when it cannot be."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {path}: cannot create directory ({e.strerror})") from None
    return path


def package_error(args, fam: Family, what: str, exc: BaseException | None = None) -> str:
    """One line for the report; the full traceback on stderr with --verbose."""
    msg = f"{what}: {one_line(exc)}" if exc is not None else what
    if args.verbose:
        tb = traceback.format_exc() if exc is not None else fam.traceback
        if tb and tb.strip() != "NoneType: None":
            err(tb.rstrip())
    return msg


def pkg_status(fam: Family) -> dict:
    return {"package": fam.name, "distribution": fam.dist, "version": fam.version,
            "status": fam.status, "error": fam.error}


def usable(args, fam: Family, entry: dict, explicit: set[str]) -> bool:
    """Whether to run `fam`; records why not in `entry` (a package that is
    not installed is an error only when asked for by name)."""
    if not fam.installed:
        if fam.name in explicit:
            entry["error"] = "not installed"
        return False
    if not fam.ok:
        entry["error"] = package_error(args, fam, f"import failed: {fam.error}")
        return False
    return True


def archs_text(info: dict | None) -> str:
    if info is None:
        return "?"
    if info.get("missing"):
        return "unknown (no build info)"
    archs = sorted(map(str, info.get("cuda_archs") or []),
                   key=lambda a: (int(re.match(r"\d*", a).group() or 0), a))
    return ",".join(archs) if archs else "CPU only"


def sync(device) -> None:
    """Surface a package's asynchronous CUDA error as its own failure, not the next one's."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def to_float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def run_stamp(args) -> dict:
    """The command line and the UTC time of this run, for reports."""
    return {"command": "lowbit " + shlex.join(args.argv),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
