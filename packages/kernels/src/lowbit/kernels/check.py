"""`lowbit check`: every package's selfcheck (each op against the pure-torch
reference) on the device; exit status 1 on any failure."""

from __future__ import annotations

import json
import time

from . import __version__
from . import _families
from . import _report as rep
from ._common import (
    EXIT_FAIL, out_dir, package_error, pkg_status, run_stamp, select, sync, to_float, usable,
)
from ._env import capability, device_line, environment, parse_device
from ._families import Family, runs_here

HEADERS = ["package", "op", "problem", "result", "metric", "value", "limit"]


def check_result(fam: Family, r) -> dict:
    """One selfcheck result, normalised (a malformed one is a failure)."""
    if not isinstance(r, dict) or "passed" not in r:
        return {"package": fam.name, "op": str(getattr(r, "get", lambda k, d=None: d)("op", "?")),
                "problem": "", "passed": False, "metric": "malformed result", "value": float("nan"),
                "limit": float("nan")}
    return {"package": fam.name, "op": str(r.get("op", "?")), "problem": str(r.get("problem", "")),
            "passed": bool(r["passed"]), "metric": str(r.get("metric", "")),
            "value": to_float(r.get("value")), "limit": to_float(r.get("limit"))}


def unchecked_ops(fam: Family, checked: set[str], device) -> list[str]:
    """Ops that run here but no check covered: reported, not a failure."""
    try:
        ops = fam.ops()
        archs = fam.build_info().get("cuda_archs") or []
    except Exception:
        return []
    return [op for op, t in ops.items()
            if op not in checked and runs_here(t, archs, capability(device))[0]]


def check_family(args, fam: Family, entry: dict, device) -> list[dict]:
    """Run one family's selfcheck; its results (errors go into `entry`)."""
    import torch

    t0 = time.perf_counter()
    try:
        selfcheck = fam.submodule("selfcheck")
        torch.manual_seed(0)  # reproducible random problems
        got = list(selfcheck.run(device))
        sync(device)
    except KeyboardInterrupt:
        raise
    except Exception as e:
        entry["error"] = package_error(args, fam, "selfcheck failed", e)
        return []
    finally:
        entry["seconds"] = round(time.perf_counter() - t0, 3)
    if not got:
        entry["error"] = "selfcheck returned no results"
        return []
    entry["checked"] = True
    mine = [check_result(fam, r) for r in got]
    entry["unchecked"] = unchecked_ops(fam, {r["op"] for r in mine}, device)
    return mine


def cmd_check(args) -> int:
    device = parse_device(args.device)
    selected, explicit = select(args.package)
    folder = out_dir(args.out)
    env = environment(device)
    results, packages = [], []
    for fam in _families.discover(selected):
        entry = pkg_status(fam)
        entry["checked"] = False
        packages.append(entry)
        if usable(args, fam, entry, explicit):
            results += check_family(args, fam, entry, device)

    passed = (bool(results) and not any(not r["passed"] for r in results)
              and not any(p["error"] for p in packages))
    report = {"lowbit_kernels": __version__, **run_stamp(args),
              "environment": env, "passed": passed, "packages": packages, "results": results}
    summary = check_summary(results, packages, passed)
    if folder:
        rep.write_json(folder / "check.json", report)
        (folder / "check.md").write_text(check_md(report, summary))
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print_check(report, summary, folder)
    return 0 if passed else EXIT_FAIL


def print_check(report: dict, summary: str, folder) -> None:
    env = report["environment"]
    print(f"lowbit check on {device_line(env['device'])} · torch {env['torch']}")
    print()
    if report["results"]:
        print(rep.text_table(HEADERS, [
            [r["package"], r["op"], r["problem"], "PASS" if r["passed"] else "FAIL",
             r["metric"], r["value"], r["limit"]] for r in report["results"]]))
    for p in report["packages"]:
        if p["error"]:
            print(f"FAIL  {p['package']}: {p['error']}")
        elif p["status"] == "not installed":
            print(f"skip  {p['package']}: not installed")
        if p.get("unchecked"):
            print(f"note  {p['package']}: no check for {', '.join(p['unchecked'])}")
    print(summary)
    if folder:
        print(f"wrote {folder / 'check.md'}, {folder / 'check.json'}")


def check_summary(results, packages, passed) -> str:
    n_fail = sum(not r["passed"] for r in results)
    n_err = sum(bool(p["error"]) for p in packages)
    n_skip = sum(p["status"] == "not installed" and not p["error"] for p in packages)
    parts = [f"{len(results) - n_fail} of {len(results)} checks passed"]
    if n_err:
        parts.append(f"{n_err} package{'s' * (n_err > 1)} failed")
    if n_skip:
        parts.append(f"{n_skip} not installed")
    if not results and not n_err:
        parts.append("nothing was checked")
    return ("PASSED: " if passed else "FAILED: ") + ", ".join(parts)


def check_md(report: dict, summary: str) -> str:
    env = report["environment"]
    lines = ["# lowbit check", "", f"`{report['command']}` on {report['date']}: **{summary}**", "",
             f"Device: {device_line(env['device'])}; torch {env['torch']}, CUDA {env['cuda']}.", ""]
    lines.append(rep.md_table(HEADERS, [
        [r["package"], r["op"], r["problem"], "pass" if r["passed"] else "**FAIL**", r["metric"],
         r["value"], r["limit"]] for r in report["results"]]))
    for p in report["packages"]:
        if p["error"]:
            lines.append(f"- **{p['package']}**: {p['error']}")
        elif p["status"] == "not installed":
            lines.append(f"- {p['package']}: not installed")
        if p.get("unchecked"):
            lines.append(f"- {p['package']}: no check for {', '.join(p['unchecked'])}")
    return "\n".join(lines).rstrip() + "\n"
