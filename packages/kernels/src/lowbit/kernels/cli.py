"""The `lowbit` command: info, check and bench over every installed lowbit
kernel package (see README.md of lowbit-kernels)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import shlex
import signal
import sys
import textwrap
import time
import traceback
from pathlib import Path

from . import __version__
from ._env import (
    MODELS, UserError, canonical_model, capability, device_line, environment, package_models,
    parse_device, same_model,
)
from ._families import (
    TARGETS, Family, ProtocolError, discover, family_specs, normalize_name, one_line, runs_here,
)
from . import _report as rep

# Exit statuses: 0 ok, 1 a check/benchmark failed, 2 a mistake on the command line.
EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DEFAULT_BENCH_OUT = "lowbit-bench"

MAIN_HELP = """\
lowbit: what your lowbit installation contains and how fast it is.

  lowbit info     versions, compiled architectures, which op runs on this device
  lowbit check    run every op against the pure-torch reference (exit 1 on failure)
  lowbit bench    benchmark every op with its baselines; tables, JSON/CSV, plots

Run 'lowbit COMMAND --help' for a command's options.
"""


class _Parser(argparse.ArgumentParser):
    # One clear line instead of argparse's usage dump.
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lowbit", description=MAIN_HELP, usage="lowbit [--version] COMMAND [options]",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"lowbit-kernels {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, prog="lowbit")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", metavar="DEV",
                        help="cpu, cuda or cuda:N (default: cuda when a GPU is visible, else cpu)")
    common.add_argument("--json", action="store_true",
                        help="print machine-readable JSON on stdout instead of tables")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="print full tracebacks of package errors")
    pkg = argparse.ArgumentParser(add_help=False)
    pkg.add_argument("-p", "--package", action="append", metavar="NAME",
                     help="only this package (nvfp4_quant, nvfp4-mm, lowbit-w4a8-mm, ...); "
                          "repeat or comma-separate for several (default: every installed one)")

    sub.add_parser(
        "info", parents=[common], help="versions, architectures and where each op runs",
        description="Show torch/CUDA versions, every lowbit package with the CUDA architectures "
                    "it was compiled for, the device, and per op which targets (CPU, SM90, SM100, "
                    "SM120) have a kernel and whether it runs on this device.")
    check = sub.add_parser(
        "check", parents=[common, pkg], help="run every op against the reference",
        description="Run every op of every installed package on the device, on an embedded "
                    "realistic problem with random data, and compare with the pure-torch "
                    "reference. Exit status 1 when any check fails or an installed package "
                    "does not import.")
    check.add_argument("--out", metavar="DIR", type=Path,
                       help="also write check.md and check.json into DIR")
    bench = sub.add_parser(
        "bench", parents=[common, pkg], help="benchmark every op with its baselines",
        description=textwrap.fill("Benchmark every op of the installed packages against their baselines "
                    "(CUDA-graph replay timed with CUDA events, warm-up, median, rotating inputs "
                    "larger than L2). Prints tables and writes bench.md, bench.json, "
                    "bench.csv and one PNG plot per op into --out. On CPU it runs the CPU kernels on small "
                    "shapes.", 79),
        epilog="examples:\n"
               "  lowbit bench --quick                         a first look (fewer token counts)\n"
               "  lowbit bench --shapes llama3-8b -p nvfp4_mm  one model, one package\n"
               "  lowbit bench --out docs/benchmarks           the committed results",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--shapes", "--models", action="append", metavar="MODEL", dest="shapes",
                       help=f"only the layer shapes of these models ({', '.join(MODELS)}; "
                            "case and punctuation do not matter); repeat or comma-separate")
    bench.add_argument("--quick", action="store_true", help="fewer token counts M per shape")
    bench.add_argument("--out", metavar="DIR", type=Path, default=Path(DEFAULT_BENCH_OUT),
                       help="write bench.md, bench.json, bench.csv and PNG plots into DIR "
                            f"(default: ./{DEFAULT_BENCH_OUT})")
    bench.add_argument("--no-files", action="store_true", help="print only; write no files")
    bench.add_argument("--merge", action="store_true",
                       help="keep the other packages' results already in DIR/bench.json "
                            "(benchmark one package per command, same --out)")
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.subcommands = sub.choices  # name -> parser, for errors worded per command
    return p


def main(argv: list[str] | None = None, *, families: list[tuple[str, str]] | None = None) -> int:
    """Entry point. `families` ((name, module) pairs) replaces the known
    kernel packages, like the LOWBIT_FAMILIES environment variable (tests)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = parser.subcommands.get(args.command, parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv
    specs = families if families is not None else family_specs()
    # A time limit's SIGTERM ends the run like Ctrl-C: bench still writes what it measured.
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        return {"info": cmd_info, "check": cmd_check, "bench": cmd_bench}[args.command](args, specs)
    except UserError as e:
        print(f"lowbit {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `lowbit info | head`: stop quietly, as shell tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# ------------------------------------------------------------------ helpers

def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _split(values) -> list[str]:
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


def _select(specs, requested) -> tuple[list[tuple[str, str]], set[str]]:
    """The specs to run and the names the user asked for explicitly."""
    names = [normalize_name(r) for r in _split(requested)]
    known = [n for n, _ in specs]
    for raw, n in zip(_split(requested), names):
        if n not in known:
            raise UserError(f"unknown package '{raw}' (known: {', '.join(known)})")
    if not names:
        return list(specs), set()
    return [s for s in specs if s[0] in names], set(names)


def _out_dir(path: Path | None) -> Path | None:
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {path}: cannot create directory ({e.strerror})") from None
    return path


def _report_package_error(args, fam: Family, what: str, exc: BaseException | None = None) -> str:
    msg = f"{what}: {one_line(exc)}" if exc is not None else what
    if args.verbose:
        tb = traceback.format_exc() if exc is not None else fam.traceback
        if tb and tb.strip() != "NoneType: None":
            _err(tb.rstrip())
    return msg


def _pkg_status(fam: Family) -> dict:
    return {"package": fam.name, "distribution": fam.dist, "version": fam.version,
            "status": fam.status, "error": fam.error}


def _archs_text(info: dict | None) -> str:
    if info is None:
        return "?"
    if info.get("missing"):
        return "unknown (no build info)"
    archs = sorted(map(str, info.get("cuda_archs") or []),
                   key=lambda a: (int(re.match(r"\d*", a).group() or 0), a))
    return ",".join(archs) if archs else "CPU only"


def _target_built(target: str, archs) -> bool:
    major = {"SM90": 9, "SM100": 10, "SM120": 12}[target]
    for a in archs or ():
        m = re.match(r"\d+", str(a))
        if m and int(m.group()) // 10 == major:
            return True
    return False


def _sync(device) -> None:
    """Surface a package's asynchronous CUDA error as its own failure, not the next one's."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


# --------------------------------------------------------------------- info

def cmd_info(args, specs) -> int:
    device = parse_device(args.device)
    cap = capability(device)
    env = environment(device)
    fams = discover(specs)
    packages = []
    for fam in fams:
        entry = _pkg_status(fam)
        if fam.ok:
            try:
                entry["build_info"] = fam.build_info()
            except Exception as e:
                entry["build_info"] = None
                entry["error"] = _report_package_error(args, fam, "build_info() failed", e)
            try:
                ops = fam.ops()
            except Exception as e:
                ops = {}
                entry["error"] = _report_package_error(args, fam, "OPS unreadable", e)
            archs = (entry["build_info"] or {}).get("cuda_archs") or []
            entry["ops"] = {}
            for op, targets in ops.items():
                ok, why = runs_here(targets, archs, cap)
                entry["ops"][op] = {
                    "targets": list(targets),
                    "built": [t for t in targets if t == "CPU" or _target_built(t, archs)],
                    "runs_here": ok, "reason": why}
        packages.append(entry)

    if args.json:
        print(json.dumps({"lowbit_kernels": __version__, "environment": env, "packages": packages},
                         indent=1, default=str))
        return 0

    cuda = f"CUDA {env['cuda']}" if env["cuda"] else "CPU-only torch"
    print(f"lowbit-kernels {__version__} · torch {env['torch']} · {cuda} · Python {env['python']}")
    print(f"device: {device_line(env['device'])}"
          + (f" (1 of {env['gpus']} GPUs)" if env["gpus"] > 1 and device.type == "cuda" else ""))
    support = [f"{d} {v or 'not installed'}" for d, v in env["support_packages"].items()
               if d != "lowbit-kernels"]
    print("support: " + ", ".join(support))
    print()
    rows, problems = [], []
    for e in packages:
        bi = e.get("build_info")
        status = e["status"]
        if e.get("error"):
            status += " (below)" if e["status"] != "ok" else ", with errors (below)"
            problems.append(f"{e['distribution']}: {e['error']}")
        ok = e["status"] == "ok"
        rows.append([e["distribution"], e["version"] or "-", _archs_text(bi) if ok else "",
                     (bi or {}).get("torch_built_against", "") if ok else "", status])
    print(rep.text_table(["package", "version", "built for", "torch built", "status"], rows), end="")
    for line in problems:
        print(f"  {line}")
    print()

    here = f"runs on {env['device'].get('sm', 'cpu')}"
    op_rows = []
    for e in packages:
        for op, o in e.get("ops", {}).items():
            cells = []
            for t in TARGETS:
                cells.append("-" if t not in o["targets"] else ("yes" if t in o["built"] else "not built"))
            op_rows.append([e["package"], op, *cells, "yes" if o["runs_here"] else f"no: {o['reason']}"])
    if op_rows:
        print(rep.text_table(["package", "op", *TARGETS, here], op_rows))
        print("CPU/SM90/SM100/SM120: yes = kernel compiled in, not built = kernel exists but this "
              "build lacks the architecture, - = no kernel for that target.")
    else:
        print("No lowbit kernel package is installed (pip install lowbit-kernels).")
    return 0


# -------------------------------------------------------------------- check

def _check_result(fam: Family, r) -> dict:
    if not isinstance(r, dict) or "passed" not in r:
        return {"package": fam.name, "op": str(getattr(r, "get", lambda k, d=None: d)("op", "?")),
                "problem": "", "passed": False, "metric": "malformed result", "value": float("nan"),
                "limit": float("nan")}
    value, limit = _float(r.get("value")), _float(r.get("limit"))
    return {"package": fam.name, "op": str(r.get("op", "?")), "problem": str(r.get("problem", "")),
            "passed": bool(r["passed"]), "metric": str(r.get("metric", "")),
            "value": value, "limit": limit}


def cmd_check(args, specs) -> int:
    import torch

    device = parse_device(args.device)
    selected, explicit = _select(specs, args.package)
    out_dir = _out_dir(args.out)
    env = environment(device)
    results, packages = [], []
    for fam in discover(selected):
        entry = _pkg_status(fam)
        entry["checked"] = False
        packages.append(entry)
        if not fam.installed:
            if fam.name in explicit:
                entry["error"] = "not installed"
            continue
        if not fam.ok:
            entry["error"] = _report_package_error(args, fam, f"import failed: {fam.error}")
            continue
        t0 = time.perf_counter()
        try:
            selfcheck = fam.submodule("selfcheck")
            torch.manual_seed(0)  # reproducible random problems
            got = list(selfcheck.run(device))
            _sync(device)
        except KeyboardInterrupt:
            raise
        except Exception as e:
            entry["error"] = _report_package_error(args, fam, "selfcheck failed", e)
            continue
        finally:
            entry["seconds"] = round(time.perf_counter() - t0, 3)
        if not got:
            entry["error"] = "selfcheck returned no results"
            continue
        entry["checked"] = True
        mine = [_check_result(fam, r) for r in got]
        results += mine
        # Ops that run here but no check covered: reported, not a failure.
        try:
            ops = fam.ops()
            archs = fam.build_info().get("cuda_archs") or []
        except Exception:
            ops, archs = {}, []
        seen = {r["op"] for r in mine}
        entry["unchecked"] = [op for op, t in ops.items()
                              if op not in seen and runs_here(t, archs, capability(device))[0]]

    failed_checks = [r for r in results if not r["passed"]]
    pkg_errors = [p for p in packages if p["error"]]
    passed = not failed_checks and not pkg_errors and bool(results)
    report = {"lowbit_kernels": __version__, "command": "lowbit " + shlex.join(args.argv),
              "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "environment": env, "passed": passed, "packages": packages, "results": results}
    summary = _check_summary(results, packages, passed)
    if out_dir:
        rep.write_json(out_dir / "check.json", report)
        (out_dir / "check.md").write_text(_check_md(report, summary))

    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(f"lowbit check on {device_line(env['device'])} · torch {env['torch']}")
        print()
        if results:
            print(rep.text_table(
                ["package", "op", "problem", "result", "metric", "value", "limit"],
                [[r["package"], r["op"], r["problem"], "PASS" if r["passed"] else "FAIL",
                  r["metric"], r["value"], r["limit"]] for r in results]))
        for p in packages:
            if p["error"]:
                print(f"FAIL  {p['package']}: {p['error']}")
            elif p["status"] == "not installed":
                print(f"skip  {p['package']}: not installed")
            if p.get("unchecked"):
                print(f"note  {p['package']}: no check for {', '.join(p['unchecked'])}")
        print(summary)
        if out_dir:
            print(f"wrote {out_dir / 'check.md'}, {out_dir / 'check.json'}")
    return 0 if passed else EXIT_FAIL


def _check_summary(results, packages, passed) -> str:
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


def _check_md(report: dict, summary: str) -> str:
    env = report["environment"]
    lines = ["# lowbit check", "", f"`{report['command']}` on {report['date']}: **{summary}**", "",
             f"Device: {device_line(env['device'])}; torch {env['torch']}, CUDA {env['cuda']}.", ""]
    lines.append(rep.md_table(
        ["package", "op", "problem", "result", "metric", "value", "limit"],
        [[r["package"], r["op"], r["problem"], "pass" if r["passed"] else "**FAIL**", r["metric"],
          r["value"], r["limit"]] for r in report["results"]]))
    for p in report["packages"]:
        if p["error"]:
            lines.append(f"- **{p['package']}**: {p['error']}")
        elif p["status"] == "not installed":
            lines.append(f"- {p['package']}: not installed")
        if p.get("unchecked"):
            lines.append(f"- {p['package']}: no check for {', '.join(p['unchecked'])}")
    return "\n".join(lines).rstrip() + "\n"


# -------------------------------------------------------------------- bench

def _bench_row(fam: Family, r) -> dict:
    need = ("op", "shape", "M", "impl", "us", "metric", "metric_name")
    if not isinstance(r, dict) or any(k not in r for k in need):
        lacking = ", ".join(k for k in need if k not in (r or {}))
        raise ProtocolError(f"bench row without {lacking}: {r!r}"[:200])
    row = {k: r[k] for k in r}
    row.update(package=fam.name, op=str(r["op"]), shape=str(r["shape"]), M=int(r["M"]),
               impl=str(r["impl"]), us=_float(r["us"]), metric=_float(r["metric"]),
               metric_name=str(r["metric_name"]))
    return row


def _copy_bandwidth(device) -> float | None:
    if device.type != "cuda":
        return None
    try:
        from lowbit.testing.bench import copy_bandwidth

        import torch

        with torch.cuda.device(device):
            return copy_bandwidth(device=device)
    except Exception:
        return None


def _models_for(requested: list[str], bench) -> tuple[list[str] | None, list[str]]:
    """(names to pass to this package's bench.run, requested models it lacks).
    Packages spell model names their own way (bench.MODELS keys): pass theirs."""
    if not requested:
        return None, []
    known = package_models(bench)
    if known is None:
        return [canonical_model(r) or r for r in requested], []
    chosen, missing = [], []
    for r in requested:
        hit = next((k for k in known if same_model(r, k)), None)
        if hit is None:
            missing.append(canonical_model(r) or r)
        elif hit not in chosen:
            chosen.append(hit)
    return chosen, missing


def cmd_bench(args, specs) -> int:
    import torch

    device = parse_device(args.device)
    selected, explicit = _select(specs, args.package)
    requested = _split(args.shapes)
    env = environment(device)
    progress_on = not args.quiet

    # Import every bench module first: model names are validated against the
    # packages' own lists before anything runs.
    plan = []
    for fam in discover(selected):
        entry = _pkg_status(fam)
        entry["rows"] = 0
        bench = None
        if fam.ok:
            try:
                entry["cuda_archs"] = _archs_text(fam.build_info())
            except Exception:
                entry["cuda_archs"] = "?"
            try:
                bench = fam.submodule("bench")
            except Exception as e:
                entry["error"] = _report_package_error(args, fam, "bench unavailable", e)
        plan.append((fam, entry, bench))
    extra_models = [k for _, _, b in plan if b is not None for k in package_models(b) or ()
                    if canonical_model(k) is None]
    for r in requested:
        if canonical_model(r) is None and not any(same_model(r, k) for k in extra_models):
            known = list(MODELS) + list(dict.fromkeys(extra_models))
            raise UserError(f"unknown model '{r}' (known: {', '.join(known)})")
    models = [canonical_model(r) or r for r in requested] or None
    out_dir = None if args.no_files else _out_dir(args.out)  # only once the arguments are valid

    rows, packages = [], []
    interrupted = False
    t_start = time.perf_counter()
    n = len(plan)
    for i, (fam, entry, bench) in enumerate(plan, 1):
        packages.append(entry)
        if not fam.installed:
            if fam.name in explicit:
                entry["error"] = "not installed"
            _err(f"[{i}/{n}] {fam.name}: not installed, skipped")
            continue
        if not fam.ok:
            entry["error"] = _report_package_error(args, fam, f"import failed: {fam.error}")
            _err(f"[{i}/{n}] {fam.name}: {entry['error']}; skipped")
            continue
        if bench is None:
            _err(f"[{i}/{n}] {fam.name}: {entry['error']}; skipped")
            continue
        pkg_models, lacking = _models_for(requested, bench)
        if lacking:
            entry["note"] = f"no shapes for {', '.join(lacking)}"
            _err(f"[{i}/{n}] {fam.name}: {entry['note']}")
        if requested and not pkg_models:
            entry["status"] = "skipped"
            continue
        count = [0]
        t0 = time.perf_counter()

        def progress(msg, _i=i, _name=fam.name, _count=count, _t0=t0):
            _count[0] += 1
            if progress_on:
                _err(f"[{_i}/{n} {_name} {time.perf_counter() - _t0:6.1f}s] {msg}")

        if progress_on:
            _err(f"[{i}/{n}] {fam.name}: benchmarking on {device}"
                 + (f" ({', '.join(pkg_models)})" if pkg_models else ""))
        try:
            torch.manual_seed(0)
            got = list(bench.run(device, models=pkg_models, quick=args.quick, progress=progress))
            _sync(device)
        except KeyboardInterrupt:
            entry["error"] = "interrupted"
            interrupted = True
            break
        except Exception as e:
            entry["error"] = _report_package_error(args, fam, "bench failed", e)
            _err(f"[{i}/{n}] {fam.name}: {entry['error']}")
            continue
        finally:
            entry["seconds"] = round(time.perf_counter() - t0, 1)
        bad = []
        for r in got:
            try:
                rows.append(_bench_row(fam, r))
                entry["rows"] += 1
            except (ProtocolError, TypeError, ValueError) as e:
                bad.append(str(e))
        if bad:
            entry["error"] = f"{len(bad)} malformed bench rows skipped (first: {bad[0]})"
            _err(f"[{i}/{n}] {fam.name}: {entry['error']}")
        elif not got:
            entry["error"] = "bench returned no rows"

    meta = {
        "lowbit_kernels": __version__,
        "command": "lowbit " + shlex.join(args.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": env,
        "models": models,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - t_start, 1),
        "copy_bandwidth_TBps": None,
        "timing": "lowbit.testing.bench: CUDA events around CUDA-graph replays after warm-up, "
                  "median of repeats, rotating input sets larger than 3x L2; CPU: wall-clock median",
    }
    bw = None if interrupted else _copy_bandwidth(device)
    meta["copy_bandwidth_TBps"] = None if bw is None else round(bw / 1e12, 3)
    report = {**meta, "packages": packages, "rows": rows}
    if args.merge and out_dir:
        report = _merge_earlier(out_dir / "bench.json", report)

    written = _write_bench(out_dir, report) if out_dir else []
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(f"lowbit bench on {device_line(env['device'])} · torch {env['torch']}")
        for (pkg, op), grp in rep.groups(rows).items():
            headers, table = rep.pivot(grp)
            print(f"\n{pkg} · {op}")
            print(rep.text_table(headers, table, indent="  "), end="")
        print()
        for p in packages:
            if p["error"]:
                print(f"FAIL  {p['package']}: {p['error']}")
            elif p["status"] in ("not installed", "skipped"):
                print(f"skip  {p['package']}: {p.get('note') or p['status']}")
        print(f"{len(rows)} results from {sum(1 for p in packages if p['rows'])} package(s) "
              f"in {meta['seconds']:.1f}s")
        if written:
            print(f"wrote {', '.join(str(p) for p in written)}")
    if interrupted:
        _err("lowbit: interrupted; partial results" + (" written" if written else ""))
        return EXIT_INTERRUPTED
    ok = rows and not any(p["error"] for p in packages)
    return 0 if ok else EXIT_FAIL


def _merge_earlier(path: Path, report: dict) -> dict:
    """`--merge`: keep the rows of packages this run did not select from an
    earlier bench.json in the same folder (one package per command when a
    time limit forbids running them all at once)."""
    if not path.exists():
        return report
    try:
        old = json.loads(path.read_text())
        old_rows, old_pkgs = list(old["rows"]), list(old["packages"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        _err(f"--merge: cannot read {path} ({one_line(e)}); not merged")
        return report
    now = {p["package"] for p in report["packages"]}
    kept_pkgs = [p for p in old_pkgs if p.get("package") not in now]
    if not kept_pkgs:
        return report
    kept = {p["package"] for p in kept_pkgs}
    old_dev = ((old.get("environment") or {}).get("device") or {}).get("name")
    new_dev = report["environment"]["device"].get("name")
    if old_dev != new_dev:
        _err(f"--merge: {path} was measured on {old_dev}, this run on {new_dev}")
    merged = dict(report)
    merged["packages"] = kept_pkgs + report["packages"]
    merged["rows"] = [r for r in old_rows if r.get("package") in kept] + report["rows"]
    merged["merged"] = list(old.get("merged") or []) + [
        {"packages": sorted(kept), "date": old.get("date"), "command": old.get("command"),
         "device": old_dev}]
    return merged


def _write_bench(out: Path, report: dict) -> list[Path]:
    rows = report["rows"]
    written = [out / "bench.json", out / "bench.csv", out / "bench.md"]
    rep.write_json(written[0], report)
    rep.write_csv(written[1], rows)
    plots: dict[tuple[str, str], str] = {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _err("matplotlib is not installed: no PNG plots (pip install matplotlib)")
    else:
        for (pkg, op), grp in rep.groups(rows).items():
            name = rep.plot_file(pkg, op)
            try:
                rep.plot(out / name, pkg, op, grp)
            except Exception as e:  # a plot must never lose the tables
                _err(f"plot {name} failed: {one_line(e)}")
                continue
            plots[(pkg, op)] = name
            written.append(out / name)
    written[2].write_text(_bench_md(report, plots))
    return written


def _bench_md(report: dict, plots: dict) -> str:
    env = report["environment"]
    d = env["device"]
    pk = []
    for p in report["packages"]:
        if p["status"] == "ok":
            name = f"{p['distribution']} {p['version']}" if p["version"] else p["distribution"]
            pk.append(f"{name} (built for {p.get('cuda_archs', '?')})")
    bw = report.get("copy_bandwidth_TBps")
    lines = [
        "# lowbit bench",
        "",
        f"Produced by `{report['command']}` on {report['date']} ({report['seconds']:.0f} s)"
        + "".join(f"; {', '.join(m['packages'])} from `{m['command']}` on {m['date']}"
                  for m in report.get("merged", [])) + ".",
        "",
        "| | |",
        "|---|---|",
        f"| device | {device_line(d)} |",
        f"| torch / CUDA | {env['torch']} / {env['cuda'] or '-'} |",
        f"| packages | {'; '.join(pk) or 'none'} |",
    ]
    if bw:
        lines.append(f"| device copy bandwidth | {bw} TB/s (bytes read + written) |")
    lines += [
        f"| timing | {report['timing']} |",
        "",
        "All rows: [bench.json](bench.json), [bench.csv](bench.csv). Each table: the metric per "
        "implementation; *lowbit µs* is the median time of one lowbit call; *vs best baseline* is "
        "the fastest baseline's time divided by lowbit's (>1 = lowbit faster; floors such as "
        "*copy floor* are bounds, not baselines). Columns marked * were measured in another unit "
        "and are shown in the op's unit through their time (same problem, same work).",
    ]
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
