"""Hatch build hook ``lowbit-cmake``: CMake + Ninja build of a kernel package.

A kernel package opts in with::

    [tool.hatch.build.targets.wheel.hooks.lowbit-cmake]
    module = "lowbit/nvfp4_quant"      # where the .so goes inside the wheel

The hook builds the package's CMakeLists.txt (which calls
``lowbit_add_extension``) in ``<package>/build/cmake`` (kept between builds so
only changed sources recompile), installs into a staging folder and
force-includes the result. Wheels are tagged ``py3-none-<platform>``: the
extension uses no CPython API, only torch's stable C ABI, so one wheel serves
every Python version.

Environment:
  LOWBIT_CUDA_ARCHS   "90a;100a;120a", "native", "none"; unset = visible GPUs
  LOWBIT_BUILD_JOBS   parallel compile jobs (default: cores, capped by memory)
  LOWBIT_BUILD_DIR    override the build folder
  LOWBIT_CMAKE_ARGS   extra arguments for the CMake configure step
"""

from __future__ import annotations

import os
import shlex
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

from lowbit.cutlass_ext.cmake_build import cmake_build


def wheel_tag() -> str:
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{plat}"


class LowbitCMakeHook(BuildHookInterface):
    PLUGIN_NAME = "lowbit-cmake"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        if not self.config.get("module"):
            raise RuntimeError("lowbit-cmake hook: set 'module' (e.g. \"lowbit/nvfp4_quant\")")
        root = Path(self.root)
        build_dir = Path(os.environ.get("LOWBIT_BUILD_DIR") or root / "build" / "cmake")
        stage = cmake_build(
            root, build_dir, build_dir / "stage",
            extra_args=shlex.split(os.environ.get("LOWBIT_CMAKE_ARGS", "")),
            log=self.app.display_info,
        )
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                build_data["force_include"][str(path)] = str(path.relative_to(stage))
        build_data["pure_python"] = False
        build_data["infer_tag"] = False
        build_data["tag"] = wheel_tag()


@hookimpl
def hatch_register_build_hook():
    return LowbitCMakeHook
