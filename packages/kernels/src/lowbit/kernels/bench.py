"""`lowbit bench`: every package's bench.run on the device; tables on stdout,
bench.md/json/csv and plots in --out (files: _bench_files.py)."""

from __future__ import annotations

import json
import re
import time

from lowbit.testing.shapes import MODELS, canonical_model

from . import __version__
from . import _families
from . import _report as rep
from ._bench_files import merge_earlier, write_bench
from ._common import (
    EXIT_FAIL, EXIT_INTERRUPTED, archs_text, err, out_dir, package_error, pkg_status, run_stamp,
    select, split, sync, to_float, usable,
)
from ._env import UserError, device_line, environment, parse_device
from ._families import Family, ProtocolError

TIMING = ("lowbit.testing.bench: CUDA events around CUDA-graph replays after warm-up, "
          "median of repeats, rotating input sets larger than 3x L2; CPU: wall-clock median")


# ------------------------------------------------------------ model names

def _key(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def same_model(a: str, b: str) -> bool:
    """Whether two spellings name one model ('llama3-8b', 'Llama-3-8B')."""
    ca = canonical_model(a)
    return _key(a) == _key(b) or (ca is not None and ca == canonical_model(b))


def package_models(bench_module) -> list[str] | None:
    """The model names a package's bench knows (its MODELS dict/list), or None."""
    models = getattr(bench_module, "MODELS", None)
    if isinstance(models, (dict, list, tuple)) and models:
        return [str(m) for m in models]
    return None


def models_for(requested: list[str], bench) -> tuple[list[str] | None, list[str]]:
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


def check_models(requested: list[str], benches) -> None:
    """A UserError for a model neither the shape table nor any package knows."""
    extra = [k for b in benches if b is not None for k in package_models(b) or ()
             if canonical_model(k) is None]
    for r in requested:
        if canonical_model(r) is None and not any(same_model(r, k) for k in extra):
            known = list(MODELS) + list(dict.fromkeys(extra))
            raise UserError(f"unknown model '{r}' (known: {', '.join(known)})")


# ------------------------------------------------------------ running

def plan(args, selected) -> list[tuple[Family, dict, object]]:
    """(family, report entry, bench module or None) for every selected family.
    Every bench module is imported first: model names are validated against the
    packages' own lists before anything runs."""
    out = []
    for fam in _families.discover(selected):
        entry = pkg_status(fam)
        entry["rows"] = 0
        bench = None
        if fam.ok:
            try:
                entry["cuda_archs"] = archs_text(fam.build_info())
            except Exception:
                entry["cuda_archs"] = "?"
            try:
                bench = fam.submodule("bench")
            except Exception as e:
                entry["error"] = package_error(args, fam, "bench unavailable", e)
        out.append((fam, entry, bench))
    return out


def bench_row(fam: Family, r) -> dict:
    need = ("op", "shape", "M", "impl", "us", "metric", "metric_name")
    if not isinstance(r, dict) or any(k not in r for k in need):
        lacking = ", ".join(k for k in need if k not in (r or {}))
        raise ProtocolError(f"bench row without {lacking}: {r!r}"[:200])
    row = dict(r)
    row.update(package=fam.name, op=str(r["op"]), shape=str(r["shape"]), M=int(r["M"]),
               impl=str(r["impl"]), us=to_float(r["us"]), metric=to_float(r["metric"]),
               metric_name=str(r["metric_name"]))
    return row


def accept_rows(fam: Family, entry: dict, got: list, tag: str) -> list[dict]:
    """The well-formed rows of `got`; the rest are counted as an error."""
    rows, bad = [], []
    for r in got:
        try:
            rows.append(bench_row(fam, r))
        except (ProtocolError, TypeError, ValueError) as e:
            bad.append(str(e))
    entry["rows"] += len(rows)
    if bad:
        entry["error"] = f"{len(bad)} malformed bench rows skipped (first: {bad[0]})"
        err(f"{tag} {fam.name}: {entry['error']}")
    elif not got:
        entry["error"] = "bench returned no rows"
    return rows


def run_family(args, fam: Family, entry: dict, bench, models, device, tag: str) -> list:
    """bench.run of one family with progress lines; raises KeyboardInterrupt."""
    import torch

    t0 = time.perf_counter()

    def progress(msg):
        if not args.quiet:
            err(f"{tag[:-1]} {fam.name} {time.perf_counter() - t0:6.1f}s] {msg}")

    if not args.quiet:
        err(f"{tag} {fam.name}: benchmarking on {device}" + (f" ({', '.join(models)})" if models else ""))
    try:
        torch.manual_seed(0)
        got = list(bench.run(device, models=models, quick=args.quick, progress=progress))
        sync(device)
        return got
    finally:
        entry["seconds"] = round(time.perf_counter() - t0, 1)


def bench_family(args, item, requested, device, tag: str) -> list[dict]:
    """Benchmark one planned family; its rows (problems go into its entry)."""
    fam, entry, bench = item
    if bench is None:
        err(f"{tag} {fam.name}: {entry['error'] or 'not installed'}; skipped")
        return []
    models, lacking = models_for(requested, bench)
    if lacking:
        entry["note"] = f"no shapes for {', '.join(lacking)}"
        err(f"{tag} {fam.name}: {entry['note']}")
    if requested and not models:
        entry["status"] = "skipped"
        return []
    try:
        got = run_family(args, fam, entry, bench, models, device, tag)
    except KeyboardInterrupt:
        entry["error"] = "interrupted"
        raise
    except Exception as e:
        entry["error"] = package_error(args, fam, "bench failed", e)
        err(f"{tag} {fam.name}: {entry['error']}")
        return []
    return accept_rows(fam, entry, got, tag)


def run_all(args, planned, requested, device, explicit) -> tuple[list, list, bool]:
    """(rows, package entries, interrupted) over every planned family."""
    rows, packages = [], []
    for i, item in enumerate(planned, 1):
        fam, entry, _ = item
        packages.append(entry)
        tag = f"[{i}/{len(planned)}]"
        if not usable(args, fam, entry, explicit):
            err(f"{tag} {fam.name}: " + (f"{entry['error']}; skipped" if fam.installed
                                          else "not installed, skipped"))
            continue
        try:
            rows += bench_family(args, item, requested, device, tag)
        except KeyboardInterrupt:
            return rows, packages, True
    return rows, packages, False


def copy_bandwidth(device) -> float | None:
    if device.type != "cuda":
        return None
    try:
        import torch
        from lowbit.testing.bench import copy_bandwidth as measure

        with torch.cuda.device(device):
            return measure(device=device)
    except Exception:
        return None


def cmd_bench(args) -> int:
    device = parse_device(args.device)
    selected, explicit = select(args.package)
    requested = split(args.shapes)
    env = environment(device)
    planned = plan(args, selected)
    check_models(requested, [b for _, _, b in planned])
    folder = None if args.no_files else out_dir(args.out)  # only once the arguments are valid

    t_start = time.perf_counter()
    rows, packages, interrupted = run_all(args, planned, requested, device, explicit)
    bw = None if interrupted else copy_bandwidth(device)
    report = {"lowbit_kernels": __version__, **run_stamp(args), "environment": env,
              "models": [canonical_model(r) or r for r in requested] or None, "quick": args.quick,
              "seconds": round(time.perf_counter() - t_start, 1),
              "copy_bandwidth_TBps": None if bw is None else round(bw / 1e12, 3),
              "timing": TIMING, "packages": packages, "rows": rows}
    if args.merge and folder:
        report = merge_earlier(folder / "bench.json", report)
    written = write_bench(folder, report) if folder else []
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print_bench(report, written)
    if interrupted:
        err("lowbit: interrupted; partial results" + (" written" if written else ""))
        return EXIT_INTERRUPTED
    ok = rows and not any(p["error"] for p in packages)
    return 0 if ok else EXIT_FAIL


def print_bench(report: dict, written) -> None:
    env, rows, packages = report["environment"], report["rows"], report["packages"]
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
    n_pkgs = sum(1 for p in packages if p["rows"])
    print(f"{len(rows)} results from {n_pkgs} package(s) in {report['seconds']:.1f}s")
    if written:
        print(f"wrote {', '.join(str(p) for p in written)}")
