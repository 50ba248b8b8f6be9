"""Builds the test-only extension (tests/ext) through the shared CMake module,
once per session, for the architectures the environment asks for
(LOWBIT_CUDA_ARCHS; unset = the visible GPUs, CPU-only without one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowbit import cutlass_ext
from lowbit.cutlass_ext.cmake_build import cmake_build

EXT_SRC = Path(__file__).parent / "ext"


def build_test_extension(build_dir: Path, archs: str | None) -> Path:
    """Configure + build + install tests/ext; returns the install folder."""
    return cmake_build(EXT_SRC, build_dir, build_dir / "stage", archs=archs, jobs=2, capture=True)


@pytest.fixture(scope="session")
def test_ext_dir(tmp_path_factory) -> Path:
    return build_test_extension(tmp_path_factory.mktemp("cutlass_ext_test_build"), None)


@pytest.fixture(scope="session")
def ext(test_ext_dir):
    import torch

    cutlass_ext.load_ops_library(test_ext_dir, "_lowbit_cutlass_ext_test")
    return torch.ops.lowbit_cutlass_ext_test
