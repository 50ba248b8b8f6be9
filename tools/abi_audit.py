#!/usr/bin/env python3
"""Audit built lowbit extensions for torch stable-ABI cleanliness.

Fails (exit 1) when any .so
  * references a non-stable torch C++ symbol: a mangled name in the c10::, at::
    or torch:: namespaces (torch::stable / torch::headeronly are header-only and
    must not appear as undefined references either), or
  * has a NEEDED entry other than libtorch_cpu.so and system libraries
    (libc, libm, libstdc++, libgcc_s, libdl, libpthread, librt, ld-linux).
The C shim (aoti_torch_*, torch_*) is the stable ABI and is allowed.
Prints the size of each library and the total per package.

    python tools/abi_audit.py [PATH ...]   # .so files, wheels or folders
With no paths it audits every lowbit .so importable from this Python.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ALLOWED_NEEDED = re.compile(
    r"^(libtorch_cpu\.so|libc\.so\.\d+|libm\.so\.\d+|libstdc\+\+\.so\.\d+|libgcc_s\.so\.\d+|"
    r"libdl\.so\.\d+|libpthread\.so\.\d+|librt\.so\.\d+|ld-linux[-\w.]*\.so\.\d+)$"
)
# Itanium-mangled names whose outermost namespace is c10, at or torch
# (_ZN3c10..., _ZNK2at..., _ZN5torch...), plus nested (_ZNSt...c10...) uses in
# undefined symbols.
FORBIDDEN_NS = re.compile(r"_ZN?K?(3c10|2at|5torch)")


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def needed(so: Path) -> list[str]:
    out = _run(["readelf", "-d", str(so)])
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def undefined_symbols(so: Path) -> list[str]:
    out = _run(["nm", "-D", "--undefined-only", str(so)])
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def exported_symbols(so: Path) -> list[str]:
    out = _run(["nm", "-D", "--defined-only", str(so)])
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def audit_so(so: Path) -> list[str]:
    problems = []
    for lib in needed(so):
        if not ALLOWED_NEEDED.match(lib):
            problems.append(f"NEEDED {lib} (only libtorch_cpu.so and system libraries are allowed)")
    for sym in undefined_symbols(so):
        if FORBIDDEN_NS.search(sym):
            problems.append(f"undefined non-stable torch symbol {sym}")
    for sym in exported_symbols(so):
        if FORBIDDEN_NS.search(sym):
            problems.append(f"exports torch-namespace symbol {sym} (clashes with libtorch)")
    return problems


def collect(paths: list[str], tmp: Path) -> list[tuple[str, Path]]:
    """(package label, .so path) for each .so in the given files/folders/wheels."""
    found = []
    for p in map(Path, paths):
        if p.suffix == ".whl":
            dest = tmp / p.stem
            with zipfile.ZipFile(p) as z:
                z.extractall(dest)
            found += [(p.name.split("-")[0], so) for so in sorted(dest.rglob("*.so"))]
        elif p.is_dir():
            found += [(so.parent.name, so) for so in sorted(p.rglob("*.so"))]
        elif p.suffix == ".so":
            found.append((p.parent.name, p))
        else:
            raise SystemExit(f"abi_audit: {p}: expected a .so, a wheel or a folder")
    return found


def installed() -> list[str]:
    """The folders of every installed kernel family (entry point group "lowbit.families")."""
    import importlib.metadata
    import importlib.util

    paths = []
    for ep in importlib.metadata.entry_points(group="lowbit.families"):
        spec = importlib.util.find_spec(ep.value)
        if spec and spec.submodule_search_locations:
            paths += [str(p) for p in spec.submodule_search_locations]
    return paths


def audit_all(libs: list[tuple[str, Path]]) -> int:
    """Print one line per library (and its problems); the number that failed."""
    failed = 0
    sizes: dict[str, int] = {}
    for label, so in libs:
        problems = audit_so(so)
        size = so.stat().st_size
        sizes[label] = sizes.get(label, 0) + size
        status = "ok" if not problems else f"FAIL ({len(problems)})"
        print(f"{status:10} {size / 2**20:8.2f} MiB  {label}/{so.name}")
        for pr in problems[:20]:
            print(f"           - {pr}")
        failed += bool(problems)
    print("size per package: " + ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in sizes.items()))
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help=".so files, wheels or folders (default: installed lowbit packages)")
    args = ap.parse_args(argv)
    for tool in ("readelf", "nm"):
        if not shutil.which(tool):
            print(f"abi_audit: '{tool}' not found (install binutils)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        libs = collect(args.paths or installed(), Path(tmp))
        if not libs:
            print("abi_audit: no .so found", file=sys.stderr)
            return 1
        return 1 if audit_all(libs) else 0


if __name__ == "__main__":
    sys.exit(main())
