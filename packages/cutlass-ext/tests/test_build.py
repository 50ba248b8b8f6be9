"""The build contract: CPU-only builds register every op and raise a clear
error for CUDA tensors; the built .so passes the ABI audit; the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lowbit import cutlass_ext

REPO = Path(__file__).resolve().parents[3]


def test_paths_and_versions():
    assert (cutlass_ext.include_dir() / "lowbit" / "torch_utils.h").exists()
    assert (cutlass_ext.cmake_dir() / "LowbitCutlassExtConfig.cmake").exists()
    assert cutlass_ext.cutlass_version() == cutlass_ext.CUTLASS_PIN.rsplit(".", 1)[0]
    for d in cutlass_ext.cutlass_include_dirs():
        assert d.is_dir()
    out = subprocess.run([sys.executable, "-m", "lowbit.cutlass_ext", "--cmake-dir"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == cutlass_ext.cmake_dir()


def test_test_extension_passes_abi_audit(test_ext_dir):
    res = subprocess.run([sys.executable, str(REPO / "tools" / "abi_audit.py"), str(test_ext_dir)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok" in res.stdout


def test_abi_audit_rejects_unstable_symbol(tmp_path):
    src = tmp_path / "bad.cpp"
    src.write_text("namespace c10 { void unstable(); }\nvoid use() { c10::unstable(); }\n")
    so = tmp_path / "bad.so"
    subprocess.run(["c++", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    res = subprocess.run([sys.executable, str(REPO / "tools" / "abi_audit.py"), str(so)],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "non-stable torch symbol _ZN3c108unstableEv" in res.stdout


def test_cpu_only_build_registers_ops_and_rejects_cuda(tmp_path):
    from lowbit.cutlass_ext.cmake_build import cmake_build

    ext_src = Path(__file__).parent / "ext"
    stage = cmake_build(ext_src, tmp_path / "build", tmp_path / "stage", archs="none", jobs=2, capture=True)
    info = json.loads((stage / "_lowbit_cutlass_ext_test_build_info.json").read_text())
    assert info["cuda_archs"] == []
    # A second library registering the same namespace must live in its own process.
    script = textwrap.dedent(f"""
        import torch
        from lowbit import cutlass_ext
        cutlass_ext.load_ops_library({str(stage)!r}, "_lowbit_cutlass_ext_test")
        ops = torch.ops.lowbit_cutlass_ext_test
        x = torch.zeros(8)
        ops.fill_iota(x)
        assert x[7] == 7 and ops.built_archs() == ""
        if torch.cuda.is_available():
            try:
                ops.fill_iota(torch.zeros(8, device="cuda"))
            except RuntimeError as e:
                assert "built CPU-only" in str(e) and "LOWBIT_CUDA_ARCHS" in str(e), e
            else:
                raise AssertionError("CUDA tensor accepted by a CPU-only build")
        print("OK")
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]
