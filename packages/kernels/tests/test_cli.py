"""Terminal manners of the `lowbit` command: help, one-line errors, exit codes."""

from __future__ import annotations

import pytest

from lowbit.kernels.cli import main


@pytest.mark.parametrize("command", [None, "info", "check", "bench"])
def test_help_for_every_command_exits_0(command, capsys):
    argv = ([command] if command else []) + ["--help"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lowbit" + (f" {command}" if command else ""))
    if command:
        assert "--device" in out and "--json" in out
    if command == "bench":
        for opt in ("--package", "--shapes", "--out", "--quick", "--quiet"):
            assert opt in out


def test_no_command_prints_overview(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("info", "check", "bench"):
        assert f"lowbit {cmd}" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == "lowbit-kernels 0.1.0"


@pytest.mark.parametrize("command", ["check", "bench"])
def test_unknown_package_is_one_line_exit_2(command, lowbit_subprocess):
    p = lowbit_subprocess(command, "--package", "nope", families=["fake_ok"])
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0] == f"lowbit {command}: error: unknown package 'nope' (known: fake_ok)"


def test_unknown_option_is_one_line_exit_2(lowbit_subprocess):
    p = lowbit_subprocess("bench", "--bogus")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert "unrecognized arguments: --bogus" in lines[0]
    assert "lowbit bench --help" in lines[0]


def test_unknown_command_is_one_line_exit_2(lowbit_subprocess):
    p = lowbit_subprocess("benchmark")
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'benchmark'" in p.stderr


@pytest.mark.parametrize("device, fragment", [
    ("meta", "not supported"), ("tpu", "invalid device"), ("cuda:x", "invalid device")])
def test_bad_device_is_a_usage_error(device, fragment, lowbit):
    rc, out, err = lowbit("check", "--device", device)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_cuda_device_without_gpu_is_a_usage_error(lowbit):
    import torch

    if torch.cuda.is_available():
        rc, _, err = lowbit("info", "--device", f"cuda:{torch.cuda.device_count()}")
        assert rc == 2 and "CUDA device(s) visible" in err
    else:
        rc, _, err = lowbit("info", "--device", "cuda")
        assert rc == 2 and "CUDA is not available" in err and "--device cpu" in err


def test_unknown_model_is_a_usage_error(lowbit, tmp_path):
    rc, out, err = lowbit("bench", "--shapes", "gpt-5")
    assert rc == 2 and out == ""
    assert "unknown model 'gpt-5'" in err and "Llama-3-8B" in err
    assert "llama3-8b" not in err  # the package's spelling of a known model is not listed twice
    assert lowbit.calls == [] and list(tmp_path.iterdir()) == []  # nothing ran, nothing written


def test_out_that_is_a_file_is_a_usage_error(lowbit, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = lowbit("bench", "--out", str(f))
    assert rc == 2 and "is not a directory" in err


def test_default_device_is_cpu_without_gpu(lowbit):
    import torch

    lowbit("check")
    want = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    assert lowbit.calls == [("selfcheck", want)]


def test_models_are_canonicalised():
    from lowbit.kernels.bench import same_model
    from lowbit.testing.shapes import canonical_model

    assert canonical_model("llama3-8b") == "Llama-3-8B"
    assert canonical_model("LLAMA_3.1_405B") == "Llama-3.1-405B"
    assert canonical_model("llama3-405b") == "Llama-3.1-405B"
    assert canonical_model("qwen2.5-72b") == "Qwen2.5-72B"
    assert canonical_model("deepseek-r1") == "DeepSeek-R1"
    assert canonical_model("llama3") is None
    assert same_model("llama3-8b", "Llama-3-8B") and same_model("Llama-3.1-405B", "llama3-405b")
    assert not same_model("llama3-8b", "llama3-70b") and same_model("mixtral", "MIXTRAL")


def test_package_names_are_normalised():
    from lowbit.kernels._families import normalize_name

    for name in ("nvfp4_mm", "nvfp4-mm", "lowbit-nvfp4-mm", "lowbit.nvfp4_mm", "NVFP4-MM"):
        assert normalize_name(name) == "nvfp4_mm"
