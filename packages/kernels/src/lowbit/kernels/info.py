"""`lowbit info`: versions, what each package was compiled for, where each op runs."""

from __future__ import annotations

import json
import re

from . import __version__
from . import _families
from . import _report as rep
from ._common import archs_text, package_error, pkg_status
from ._env import capability, device_line, environment, parse_device
from ._families import TARGETS, Family, runs_here


def target_built(target: str, archs) -> bool:
    """Whether any of `archs` ("90a", "100f", ...) belongs to `target` ("SM100")."""
    major = {"SM90": 9, "SM100": 10, "SM120": 12}[target]
    for a in archs or ():
        m = re.match(r"\d+", str(a))
        if m and int(m.group()) // 10 == major:
            return True
    return False


def package_entry(args, fam: Family, cap) -> dict:
    """Status, build info and per-op targets of one family."""
    entry = pkg_status(fam)
    if not fam.ok:
        return entry
    try:
        entry["build_info"] = fam.build_info()
    except Exception as e:
        entry["build_info"] = None
        entry["error"] = package_error(args, fam, "build_info() failed", e)
    try:
        ops = fam.ops()
    except Exception as e:
        ops = {}
        entry["error"] = package_error(args, fam, "OPS unreadable", e)
    archs = (entry["build_info"] or {}).get("cuda_archs") or []
    entry["ops"] = {}
    for op, targets in ops.items():
        ok, why = runs_here(targets, archs, cap)
        entry["ops"][op] = {
            "targets": list(targets),
            "built": [t for t in targets if t == "CPU" or target_built(t, archs)],
            "runs_here": ok, "reason": why}
    return entry


def cmd_info(args) -> int:
    device = parse_device(args.device)
    cap = capability(device)
    env = environment(device)
    packages = [package_entry(args, fam, cap) for fam in _families.discover()]
    if args.json:
        print(json.dumps({"lowbit_kernels": __version__, "environment": env, "packages": packages},
                         indent=1, default=str))
        return 0
    print_header(env, device)
    print_packages(packages)
    print_ops(packages, env)
    return 0


def print_header(env: dict, device) -> None:
    cuda = f"CUDA {env['cuda']}" if env["cuda"] else "CPU-only torch"
    print(f"lowbit-kernels {__version__} · torch {env['torch']} · {cuda} · Python {env['python']}")
    print(f"device: {device_line(env['device'])}"
          + (f" (1 of {env['gpus']} GPUs)" if env["gpus"] > 1 and device.type == "cuda" else ""))
    support = [f"{d} {v or 'not installed'}" for d, v in env["support_packages"].items()
               if d != "lowbit-kernels"]
    print("support: " + ", ".join(support))
    print()


def print_packages(packages: list[dict]) -> None:
    rows, problems = [], []
    for e in packages:
        bi = e.get("build_info")
        status = e["status"]
        if e.get("error"):
            status += " (below)" if e["status"] != "ok" else ", with errors (below)"
            problems.append(f"{e['distribution']}: {e['error']}")
        ok = e["status"] == "ok"
        rows.append([e["distribution"], e["version"] or "-", archs_text(bi) if ok else "",
                     (bi or {}).get("torch_built_against", "") if ok else "", status])
    print(rep.text_table(["package", "version", "built for", "torch built", "status"], rows), end="")
    for line in problems:
        print(f"  {line}")
    print()


def print_ops(packages: list[dict], env: dict) -> None:
    here = f"runs on {env['device'].get('sm', 'cpu')}"
    op_rows = []
    for e in packages:
        for op, o in e.get("ops", {}).items():
            cells = ["-" if t not in o["targets"] else ("yes" if t in o["built"] else "not built")
                     for t in TARGETS]
            op_rows.append([e["package"], op, *cells, "yes" if o["runs_here"] else f"no: {o['reason']}"])
    if not op_rows:
        print("No lowbit kernel package is installed (pip install lowbit-kernels).")
        return
    print(rep.text_table(["package", "op", *TARGETS, here], op_rows))
    print("CPU/SM90/SM100/SM120: yes = kernel compiled in, not built = kernel exists but this "
          "build lacks the architecture, - = no kernel for that target.")
