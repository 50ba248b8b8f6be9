"""Hatch build hook ``lowbit-cmake``: CMake + Ninja build of a kernel package.

A kernel package opts in with::

    [tool.hatch.build.targets.wheel.hooks.lowbit-cmake]
    module = "lowbit/nvfp4_quant"      # where the .so goes inside the wheel

The hook configures the package's CMakeLists.txt (which calls
``lowbit_add_extension``), builds it with Ninja in ``<package>/build/cmake``
(kept between builds so only changed sources recompile), installs into a
staging folder and force-includes the result. Wheels are tagged
``py3-none-<platform>``: the extension uses no CPython API, only torch's
stable C ABI, so one wheel serves every Python version.

Environment:
  LOWBIT_CUDA_ARCHS   "90a;100a;120a", "native", "none"; unset = visible GPUs
  LOWBIT_BUILD_JOBS   parallel compile jobs (default: cores, capped by memory
                      at ~6 GB per CUTLASS translation unit)
  LOWBIT_BUILD_DIR    override the build folder
  LOWBIT_CMAKE_ARGS   extra arguments for the CMake configure step
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

from lowbit import cutlass_ext

GB_PER_JOB = 6  # peak RSS of one CUTLASS kernel TU under nvcc (BUILD-NOTES: ~5 GB)


def default_jobs() -> int:
    cores = os.cpu_count() or 1
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return cores
    return max(1, min(cores, int(mem_gb // GB_PER_JOB)))


def wheel_tag() -> str:
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{plat}"


def _tool(name: str) -> str:
    # Prefer the tool installed next to this interpreter (build env), then PATH.
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


class LowbitCMakeHook(BuildHookInterface):
    PLUGIN_NAME = "lowbit-cmake"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        module = self.config.get("module")
        if not module:
            raise RuntimeError("lowbit-cmake hook: set 'module' (e.g. \"lowbit/nvfp4_quant\")")
        root = Path(self.root)
        build_dir = Path(os.environ.get("LOWBIT_BUILD_DIR") or root / "build" / "cmake")
        stage = build_dir / "stage"
        shutil.rmtree(stage, ignore_errors=True)
        jobs = os.environ.get("LOWBIT_BUILD_JOBS") or str(default_jobs())
        configure = [
            _tool("cmake"), "-S", str(root), "-B", str(build_dir), "-G", "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_INSTALL_PREFIX={stage}",
            f"-DLowbitCutlassExt_DIR={cutlass_ext.cmake_dir()}",
            f"-DLOWBIT_PYTHON={sys.executable}",
            # Empty = read LOWBIT_CUDA_ARCHS from the environment at configure time.
            f"-DLOWBIT_CUDA_ARCHS={os.environ.get('LOWBIT_CUDA_ARCHS', '')}",
        ]
        if shutil.which("ccache") and not os.environ.get("LOWBIT_NO_CCACHE"):
            configure += [f"-DCMAKE_{lang}_COMPILER_LAUNCHER=ccache" for lang in ("CXX", "CUDA")]
        configure += shlex.split(os.environ.get("LOWBIT_CMAKE_ARGS", ""))
        env = dict(os.environ)
        env.setdefault("CCACHE_BASEDIR", "/")  # cache hits across clones at other paths
        env.setdefault("CCACHE_NOHASHDIR", "1")
        steps = [
            ("configure", configure),
            ("build", [_tool("cmake"), "--build", str(build_dir), "-j", jobs]),
            ("install", [_tool("cmake"), "--install", str(build_dir)]),
        ]
        for name, cmd in steps:
            t0 = time.monotonic()
            self.app.display_info(f"lowbit-cmake: {name}: {shlex.join(cmd)}")
            subprocess.run(cmd, check=True, env=env)
            self.app.display_info(f"lowbit-cmake: {name} took {time.monotonic() - t0:.1f} s")
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                build_data["force_include"][str(path)] = str(path.relative_to(stage))
        build_data["pure_python"] = False
        build_data["infer_tag"] = False
        build_data["tag"] = wheel_tag()


@hookimpl
def hatch_register_build_hook():
    return LowbitCMakeHook
