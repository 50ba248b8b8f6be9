"""Configure, build and install a CMake project that uses the lowbit CMake
module (a kernel package, or a test extension). Used by the hatch hook and by
tests; no hatchling import here."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

GB_PER_JOB = 6  # peak RSS of one CUTLASS kernel TU under nvcc (~5 GB measured)


def default_jobs() -> int:
    """Parallel compile jobs: the cores, capped by memory at GB_PER_JOB each."""
    cores = os.cpu_count() or 1
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return cores
    return max(1, min(cores, int(mem_gb // GB_PER_JOB)))


def _tool(name: str) -> str:
    # Prefer the tool installed next to this interpreter (build env), then PATH.
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def cmake_build(
    source_dir: Path,
    build_dir: Path,
    install_dir: Path,
    *,
    archs: str | None = None,
    jobs: int | str | None = None,
    extra_args: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
    capture: bool = False,
) -> Path:
    """Build `source_dir` in `build_dir` (kept for incremental rebuilds) and
    install into `install_dir` (emptied first). `archs` overrides the
    LOWBIT_CUDA_ARCHS environment variable. Returns `install_dir`."""
    from lowbit import cutlass_ext

    shutil.rmtree(install_dir, ignore_errors=True)
    cmake = _tool("cmake")
    configure = [
        cmake, "-S", str(source_dir), "-B", str(build_dir), "-G", "Ninja",
        f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}",
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_INSTALL_PREFIX={install_dir}",
        f"-DLowbitCutlassExt_DIR={cutlass_ext.cmake_dir()}",
        f"-DLOWBIT_PYTHON={sys.executable}",
        # Empty = read LOWBIT_CUDA_ARCHS from the environment at configure time.
        f"-DLOWBIT_CUDA_ARCHS={archs if archs is not None else os.environ.get('LOWBIT_CUDA_ARCHS', '')}",
    ]
    if shutil.which("ccache") and not os.environ.get("LOWBIT_NO_CCACHE"):
        configure += [f"-DCMAKE_{lang}_COMPILER_LAUNCHER=ccache" for lang in ("CXX", "CUDA")]
    configure += list(extra_args)
    env = dict(os.environ)
    env.setdefault("CCACHE_BASEDIR", "/")  # cache hits across clones at other paths
    env.setdefault("CCACHE_NOHASHDIR", "1")
    jobs = str(jobs or os.environ.get("LOWBIT_BUILD_JOBS") or default_jobs())
    steps = [
        ("configure", configure),
        ("build", [cmake, "--build", str(build_dir), "-j", jobs]),
        ("install", [cmake, "--install", str(build_dir)]),
    ]
    for name, cmd in steps:
        t0 = time.monotonic()
        if log:
            log(f"lowbit-cmake: {name}: {shlex.join(cmd)}")
        res = subprocess.run(cmd, env=env, capture_output=capture, text=True)
        if res.returncode:
            tail = f"\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}" if capture else ""
            raise RuntimeError(f"lowbit-cmake: {name} failed (exit {res.returncode}): {shlex.join(cmd)}{tail}")
        if log:
            log(f"lowbit-cmake: {name} took {time.monotonic() - t0:.1f} s")
    return install_dir
