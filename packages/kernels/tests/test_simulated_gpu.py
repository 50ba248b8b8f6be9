"""The command's GPU code paths (device description, per-op 'runs here',
bench metadata) with torch.cuda simulated as one H100: CI has no GPU, and the
first real GPU run is the committed H100 run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

# With a real GPU present the simulation would mix with real CUDA calls (copy
# bandwidth is really measured); tests/test_lowbit_command.py covers that case.
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a GPU; a real one is present")


@pytest.fixture
def h100(monkeypatch):
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0,
                            multi_processor_count=132, total_memory=80 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d=None: props)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    monkeypatch.setattr(torch, "manual_seed", lambda s: None)  # would touch the CUDA RNG
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: synced.append(str(d)))
    return synced


def test_info_on_an_h100(lowbit, h100):
    rc, out, err = lowbit("info", families=["fake_ok", "fake_fail"])  # default device: cuda
    assert rc == 0, err
    assert "device: cuda:0 NVIDIA H100 80GB HBM3 (sm_90, SM90, 132 SMs, 80.0 GiB)" in out
    rows = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("fake_")}
    assert rows["fake_quant"].rstrip().endswith("yes")
    assert rows["fake_bad"].rstrip().endswith("no: no SM90 kernel")
    assert "runs on sm_90" in out


def test_info_json_on_an_h100(lowbit, h100):
    rc, out, _ = lowbit("info", "--json", families=["fake_ok", "fake_raises"])
    data = json.loads(out)
    assert data["environment"]["device"] == {
        "device": "cuda:0", "name": "NVIDIA H100 80GB HBM3", "capability": "9.0", "sm": "sm_90",
        "target": "SM90", "sms": 132, "memory_gib": 80.0}
    ops = {op: o for p in data["packages"] for op, o in p["ops"].items()}
    assert ops["fake_gemm"]["runs_here"] and ops["fake_boom"]["runs_here"]


def test_bench_on_an_h100_passes_the_device_and_writes(lowbit, h100, tmp_path):
    rc, out, err = lowbit("bench", "-q", "--out", str(tmp_path))
    assert rc == 0, err
    assert lowbit.calls == [("bench", "cuda:0", None, False)]
    assert h100 == ["cuda:0"]  # async CUDA errors surface as this package's
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["environment"]["device"]["name"] == "NVIDIA H100 80GB HBM3"
    assert data["copy_bandwidth_TBps"] is None  # no real GPU to measure: left out, not a crash
    assert "| device | cuda:0 NVIDIA H100 80GB HBM3 (sm_90, SM90, 132 SMs, 80.0 GiB) |" in (
        tmp_path / "bench.md").read_text()


def test_cuda_index_out_of_range(lowbit, h100):
    rc, _, err = lowbit("check", "--device", "cuda:1")
    assert rc == 2 and "only 1 CUDA device(s) visible" in err
