"""Fixtures for the `lowbit` command's tests: fake kernel families (tests/fakes)
implementing the protocol of docs/DEVELOPING.md, and a runner that calls the
command in-process or as a subprocess, with the fakes in place of the
installed entry points (in-process: _families.family_specs monkeypatched;
subprocess: tests/fakes/lowbit_with.py does the same)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parent / "fakes"
SRC = Path(__file__).resolve().parents[1] / "src"
MISSING = "missing=lowbit.definitely_not_installed_family"


def specs(families) -> list[tuple[str, str]]:
    """'fake_ok' -> ('fake_ok', 'fake_ok'); 'name=module' as given."""
    out = []
    for f in families:
        name, _, module = f.partition("=")
        out.append((name, module or name))
    return out


@pytest.fixture
def lowbit(capsys, monkeypatch, tmp_path):
    """run(*argv, families=[...]) -> (exit status, stdout, stderr), in-process,
    in an empty working directory (bench writes ./lowbit-bench by default)."""
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.chdir(tmp_path)
    import fake_ok

    fake_ok.CALLS.clear()
    from lowbit.kernels import _families
    from lowbit.kernels.cli import main

    def run(*argv, families=("fake_ok",)):
        monkeypatch.setattr(_families, "family_specs", lambda: specs(families))
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    run.calls = fake_ok.CALLS
    return run


@pytest.fixture
def lowbit_subprocess():
    """run(*argv, families=[...]) -> CompletedProcess of the command in a subprocess."""

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(FAKES), str(SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])

    def command(argv, families):
        fams = ",".join(f"{n}={m}" for n, m in specs(families))
        return [sys.executable, "-m", "lowbit_with", fams, *argv]

    def run(*argv, families=("fake_ok",), cwd=None):
        return subprocess.run(command(argv, families), env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=300)

    def popen(*argv, families=("fake_ok",)):
        return subprocess.Popen(command(argv, families), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    run.popen = popen
    return run
