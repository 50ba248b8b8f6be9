"""The `lowbit` command against the real, installed kernel packages (CPU; the
GPU when one is visible): every installed family imports, `lowbit check`
passes, `lowbit bench --quick` produces rows and files. Skips when no kernel
package is installed. The command's own behaviour is tested with fake
packages in packages/kernels/tests."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PACKAGES = Path(__file__).resolve().parents[1] / "packages"


def declared_families() -> list[str]:
    """Every family a package of this repository declares in the entry point
    group "lowbit.families" (its pyproject.toml)."""
    out = []
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        out += list(project.get("entry-points", {}).get("lowbit.families", {}))
    return out


FAMILIES = declared_families()


def _installed(family: str) -> bool:
    try:
        spec = importlib.util.find_spec(f"lowbit.{family}")
    except ImportError:
        return False
    return spec is not None and spec.origin not in (None, "namespace")


INSTALLED = [f for f in FAMILIES if _installed(f)]
needs_install = pytest.mark.skipif(not INSTALLED, reason="no lowbit kernel package is installed")


def test_every_kernel_package_declares_its_family():
    """A package shipping a selfcheck is a family: without the entry point the
    `lowbit` command would not see it."""
    shipped = {p.parent.name for p in PACKAGES.glob("*/src/lowbit/*/selfcheck.py")}
    assert shipped and shipped <= set(FAMILIES), sorted(shipped - set(FAMILIES))


def lowbit(*argv, timeout=900):
    return subprocess.run([sys.executable, "-m", "lowbit.kernels", *argv],
                          capture_output=True, text=True, timeout=timeout)


@needs_install
def test_every_installed_family_is_discovered():
    from lowbit.kernels import family_specs

    assert {name for name, _ in family_specs()} >= set(INSTALLED)


@needs_install
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


@needs_install
def test_info_table():
    p = lowbit("info")
    assert p.returncode == 0, p.stderr
    for fam in INSTALLED:
        assert "lowbit-" + fam.replace("_", "-") in p.stdout


@needs_install
@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_check_passes(device):
    p = lowbit("check", "--json", "--device", device)
    report = json.loads(p.stdout)
    failures = [r for r in report["results"] if not r["passed"]]
    errors = [(e["package"], e["error"]) for e in report["packages"] if e["error"]]
    assert p.returncode == 0 and report["passed"], (failures, errors, p.stderr[-2000:])
    checked = {r["package"] for r in report["results"]}
    assert checked == set(INSTALLED)


@needs_install
def test_bench_quick_on_cpu_writes_results(tmp_path):
    p = lowbit("bench", "--device", "cpu", "--quick", "--out", str(tmp_path))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {r["package"] for r in data["rows"]} == set(INSTALLED)
    assert all(r["us"] > 0 for r in data["rows"])
    assert (tmp_path / "bench.md").read_text().startswith("# lowbit bench")
    assert (tmp_path / "bench.csv").exists()
