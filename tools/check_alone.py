#!/usr/bin/env python3
"""Each kernel package works installed alone, with only its declared dependencies.

For every wheel chosen in WHEEL_DIR: a fresh venv (uv venv), the wheel
installed with `uv pip install --find-links WHEEL_DIR` (so its lowbit
dependencies come from the same folder, everything else from the index, torch
pinned to this environment's version so it comes from uv's cache), then, in
that venv:
  * a family (entry point group "lowbit.families"): every op of
    `lowbit.<family>.OPS` is registered in torch.ops, `selfcheck.run(cpu)`
    passes and covers every op that has a CPU kernel, and its bench module
    imports;
  * any other package (lowbit-cutlass-ext): it imports.

    python tools/check_alone.py WHEEL_DIR [DIST ...]
DISTs default to every lowbit wheel in WHEEL_DIR except lowbit-kernels and
lowbit-testing (not kernel packages). Exit status 1 when any package fails.
Only the standard library is imported here: the same file runs as the probe
inside each venv (`--probe DIST`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOT_KERNEL_PACKAGES = ("lowbit-kernels", "lowbit-testing")


def wheel_dist(wheel: Path) -> str:
    """lowbit_nvfp4_quant-0.1.0-py3-none-linux_x86_64.whl -> lowbit-nvfp4-quant."""
    return wheel.name.split("-")[0].replace("_", "-")


def choose_wheels(folder: Path, dists: list[str]) -> list[Path]:
    wheels = {wheel_dist(w): w for w in sorted(folder.glob("lowbit_*.whl"))}
    if not dists:
        return [w for d, w in wheels.items() if d not in NOT_KERNEL_PACKAGES]
    missing = [d for d in dists if d not in wheels]
    if missing:
        raise SystemExit(f"check_alone: no wheel for {', '.join(missing)} in {folder}")
    return [wheels[d] for d in dists]


def install_alone(wheel: Path, folder: Path, venv: Path) -> Path:
    """A fresh venv holding `wheel` and its declared dependencies; its python."""
    py = venv / "bin" / "python"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    pins = venv / "constraints.txt"
    pins.write_text(f"torch=={importlib.metadata.version('torch')}\n")
    # uv caches a local wheel by its name and version, so without a refresh a
    # rebuilt lowbit wheel of the same version is replaced by an older copy.
    refresh = [a for w in folder.glob("lowbit_*.whl") for a in ("--refresh-package", wheel_dist(w))]
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(py), "--find-links", str(folder),
                    "--constraints", str(pins), *refresh, str(wheel)], check=True)
    return py


def check_wheel(wheel: Path, folder: Path) -> bool:
    dist = wheel_dist(wheel)
    t0 = time.perf_counter()
    print(f"== {dist}: fresh venv, {wheel.name} with its declared dependencies", flush=True)
    with tempfile.TemporaryDirectory(prefix="lowbit-alone-") as tmp:
        try:
            py = install_alone(wheel, folder, Path(tmp) / "venv")
        except subprocess.CalledProcessError as e:
            print(f"FAIL {dist}: install failed ({e})")
            return False
        # -I: the probe sees only the venv, never this checkout's sources.
        rc = subprocess.run([str(py), "-I", str(Path(__file__).resolve()), "--probe", dist]).returncode
    print(f"{'ok  ' if rc == 0 else 'FAIL'} {dist} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rc == 0


# ------------------------------------------------------------ inside the venv

def probe(dist: str) -> int:
    """Run in the package's own venv: 0 when every check passes."""
    eps = importlib.metadata.distribution(dist).entry_points
    families = [ep for ep in eps if ep.group == "lowbit.families"]
    if not families:
        module = dist.replace("-", ".", 1).replace("-", "_")  # lowbit-cutlass-ext -> lowbit.cutlass_ext
        __import__(module)
        if importlib.util.find_spec(f"{module}.selfcheck") is not None:
            print(f"  FAIL  {module} ships a selfcheck but declares no 'lowbit.families' entry point")
            return 1
        print(f"  {module} imports (not a kernel family)")
        return 0
    return max(probe_family(ep.name, ep.value) for ep in families)


def probe_family(name: str, module_name: str) -> int:
    import torch

    fam = importlib.import_module(module_name)
    problems = [f"{op}: not registered as torch.ops.lowbit_{name}.{op}"
                for op in fam.OPS if not registered(f"lowbit_{name}", op)]
    selfcheck = importlib.import_module(f"{module_name}.selfcheck")
    torch.manual_seed(0)
    results = list(selfcheck.run(torch.device("cpu")))
    for r in results:
        print(f"  {'pass' if r['passed'] else 'FAIL'}  {r['op']:40} {r['problem']}")
    problems += [f"{r['op']} ({r['problem']}): selfcheck failed" for r in results if not r["passed"]]
    covered = {r["op"] for r in results}
    problems += [f"{op}: has a CPU kernel but the selfcheck does not run it"
                 for op, targets in fam.OPS.items() if "CPU" in targets and op not in covered]
    importlib.import_module(f"{module_name}.bench")  # its runtime dependencies are declared
    for p in problems:
        print(f"  FAIL  {p}")
    return 1 if problems else 0


def registered(namespace: str, op: str) -> bool:
    """Whether torch.ops.<namespace>.<op>[.<overload>] resolves."""
    import torch

    obj = getattr(torch.ops, namespace)
    try:
        for part in op.split("."):
            obj = getattr(obj, part)
    except (AttributeError, RuntimeError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="?", type=Path, help="folder of built wheels (e.g. dist)")
    ap.add_argument("dists", nargs="*", help="distributions to check (default: every kernel package)")
    ap.add_argument("--probe", metavar="DIST", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        return probe(args.probe)
    if args.wheels is None:
        ap.error("WHEEL_DIR is required")
    folder = args.wheels.resolve()
    wheels = choose_wheels(folder, args.dists)
    if not wheels:
        print(f"check_alone: no kernel package wheel in {folder}", file=sys.stderr)
        return 1
    failed = [wheel_dist(w) for w in wheels if not check_wheel(w, folder)]
    print(f"check_alone: {len(wheels) - len(failed)} of {len(wheels)} packages work alone"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
