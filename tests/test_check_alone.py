"""tools/check_alone.py: which wheels it checks (the venv part runs in CI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "check_alone.py"


@pytest.fixture(scope="module")
def check_alone():
    spec = importlib.util.spec_from_file_location("check_alone", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_default_is_every_kernel_package_wheel(check_alone, tmp_path):
    names = ["lowbit_cutlass_ext-0.1.0-py3-none-any.whl", "lowbit_kernels-0.1.0-py3-none-any.whl",
             "lowbit_nvfp4_quant-0.1.0-py3-none-linux_x86_64.whl",
             "lowbit_testing-0.1.0-py3-none-any.whl", "lowbit_zeta_mm-0.1.0-py3-none-linux_x86_64.whl"]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    chosen = [check_alone.wheel_dist(w) for w in check_alone.choose_wheels(tmp_path, [])]
    assert chosen == ["lowbit-cutlass-ext", "lowbit-nvfp4-quant", "lowbit-zeta-mm"]
    assert check_alone.choose_wheels(tmp_path, ["lowbit-kernels"])[0].name == names[1]
    with pytest.raises(SystemExit, match="no wheel for lowbit-nope"):
        check_alone.choose_wheels(tmp_path, ["lowbit-nope"])


def test_ops_are_looked_up_with_their_overload(check_alone):
    assert check_alone.registered("aten", "add.Tensor")
    assert not check_alone.registered("aten", "add.no_such_overload")
    assert not check_alone.registered("aten", "no_such_op")
