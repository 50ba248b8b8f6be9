"""The `lowbit` command against the real, installed kernel packages (CPU; the
GPU when one is visible): every installed family imports, `lowbit check`
passes, `lowbit bench --quick` produces rows and files. Skips when no kernel
package is installed. The command's own behaviour is tested with fake
packages in packages/kernels/tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

FAMILIES = ("nvfp4_quant", "nvfp4_mm", "w4a8_mm")


def _installed(family: str) -> bool:
    try:
        spec = importlib.util.find_spec(f"lowbit.{family}")
    except ImportError:
        return False
    return spec is not None and spec.origin not in (None, "namespace")


INSTALLED = [f for f in FAMILIES if _installed(f)]
pytestmark = pytest.mark.skipif(not INSTALLED, reason="no lowbit kernel package is installed")


def lowbit(*argv, timeout=900):
    env = {k: v for k, v in os.environ.items() if k != "LOWBIT_FAMILIES"}
    return subprocess.run([sys.executable, "-m", "lowbit.kernels", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_info_sees_every_installed_package():
    p = lowbit("info", "--json", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    packages = {e["package"]: e for e in json.loads(p.stdout)["packages"]}
    for fam in INSTALLED:
        e = packages[fam]
        assert e["status"] == "ok" and not e["error"], e
        assert e["ops"], f"{fam}: OPS is empty"
        # SPEC: every op has a CPU kernel.
        assert all("CPU" in o["targets"] and o["runs_here"] for o in e["ops"].values()), e["ops"]
        assert "cuda_archs" in e["build_info"]


def test_info_table():
    p = lowbit("info")
    assert p.returncode == 0, p.stderr
    for fam in INSTALLED:
        assert "lowbit-" + fam.replace("_", "-") in p.stdout


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_check_passes(device):
    p = lowbit("check", "--json", "--device", device)
    report = json.loads(p.stdout)
    failures = [r for r in report["results"] if not r["passed"]]
    errors = [(e["package"], e["error"]) for e in report["packages"] if e["error"]]
    assert p.returncode == 0 and report["passed"], (failures, errors, p.stderr[-2000:])
    checked = {r["package"] for r in report["results"]}
    assert checked == set(INSTALLED)


def test_bench_quick_on_cpu_writes_results(tmp_path):
    p = lowbit("bench", "--device", "cpu", "--quick", "--out", str(tmp_path))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {r["package"] for r in data["rows"]} == set(INSTALLED)
    assert all(r["us"] > 0 for r in data["rows"])
    assert (tmp_path / "bench.md").read_text().startswith("# lowbit bench")
    assert (tmp_path / "bench.csv").exists()
