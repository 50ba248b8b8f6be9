"""`lowbit info`: versions, build architectures, where each op runs."""

from __future__ import annotations

import json

import pytest

from lowbit.kernels import runs_here

MISSING = "missing=lowbit.definitely_not_installed_family"


def test_info_table_lists_packages_ops_and_targets(lowbit):
    rc, out, err = lowbit("info", "--device", "cpu",
                          families=["fake_ok", "fake_broken", MISSING])
    assert rc == 0, err
    assert "torch " in out and "device: cpu" in out
    lines = out.splitlines()
    pkg = {ln.split()[0]: ln for ln in lines if ln.startswith("lowbit-")}
    assert "9.9.9" in pkg["lowbit-fake-ok"] and "90a,100a" in pkg["lowbit-fake-ok"]
    assert pkg["lowbit-fake-broken"].endswith("import failed (below)")
    assert ("  lowbit-fake-broken: ImportError: lowbit: compiled extension _C.so not found in "
            "/somewhere/fake_broken") in lines
    assert pkg["lowbit-missing"].split()[-2:] == ["not", "installed"]
    ops = {ln.split()[1]: ln.split() for ln in lines if ln.startswith("fake_ok ")}
    # package op CPU SM90 SM100 SM120 here
    assert ops["fake_quant"][2:] == ["yes", "yes", "yes", "not", "built", "yes"]
    assert ops["fake_gemm"][2:] == ["yes", "yes", "-", "-", "yes"]


def test_info_json(lowbit):
    rc, out, _ = lowbit("info", "--json", "--device", "cpu", families=["fake_ok", "fake_broken", MISSING])
    assert rc == 0
    data = json.loads(out)
    assert data["environment"]["device"]["device"] == "cpu"
    assert data["environment"]["torch"]
    pk = {p["package"]: p for p in data["packages"]}
    assert pk["fake_ok"]["status"] == "ok" and pk["fake_ok"]["version"] == "9.9.9"
    assert pk["fake_ok"]["build_info"]["cuda_archs"] == ["90a", "100a"]
    assert pk["fake_ok"]["ops"]["fake_quant"] == {
        "targets": ["CPU", "SM90", "SM100", "SM120"], "built": ["CPU", "SM90", "SM100"],
        "runs_here": True, "reason": ""}
    assert pk["fake_broken"]["status"] == "import failed" and "_C.so" in pk["fake_broken"]["error"]
    assert pk["missing"]["status"] == "not installed"


def test_info_without_any_package_says_so(lowbit):
    rc, out, _ = lowbit("info", "--device", "cpu", families=[MISSING])
    assert rc == 0 and "No lowbit kernel package is installed" in out


@pytest.mark.parametrize("targets, archs, cap, expect", [
    (("CPU",), [], None, (True, "")),
    (("SM90",), ["90a"], None, (False, "no CPU kernel")),
    (("CPU", "SM90"), ["90a", "100a"], (9, 0), (True, "")),
    (("CPU", "SM90"), ["100a"], (9, 0), (False, "not compiled for sm_90")),
    (("CPU", "SM90"), [], (9, 0), (False, "not compiled for sm_90")),
    (("CPU", "SM90"), ["90a"], (10, 0), (False, "no SM100 kernel")),
    (("SM100",), ["100a"], (10, 0), (True, "")),
    (("SM100",), ["100a"], (10, 3), (False, "not compiled for sm_103")),  # as arch.h decides
    (("SM100",), ["103a"], (10, 3), (True, "")),
    (("SM120",), ["120f"], (12, 0), (True, "")),
    (("CPU", "SM90", "SM100", "SM120"), ["90a"], (8, 0), (False, "no lowbit kernels for sm_80")),
])
def test_runs_here_mirrors_arch_dispatch(targets, archs, cap, expect):
    assert runs_here(targets, archs, cap) == expect
