"""Builds the layout check extension with the package's own CMake module:

    python perf/w4a8-mm/layout_check/build.py BUILD_DIR   # -> BUILD_DIR/install/_w4a8_cutlass_ref.so

sm_90a only (the CUTLASS headers it includes are Hopper code); nvcc on PATH."""

import sys
from pathlib import Path

from lowbit.cutlass_ext.cmake_build import cmake_build

build = Path(sys.argv[1]).resolve()
out = cmake_build(Path(__file__).resolve().parent, build / "cmake", build / "install", archs="90a",
                  log=print)
print(next(out.rglob("_w4a8_cutlass_ref*.so")))
