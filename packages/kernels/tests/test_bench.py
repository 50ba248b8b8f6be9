"""`lowbit bench`: tables, bench.md/json/csv, plots, progress, broken packages."""

from __future__ import annotations

import csv
import json
import sys

import pytest

MISSING = "missing=lowbit.definitely_not_installed_family"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_bench_writes_every_file(lowbit, tmp_path):
    out_dir = tmp_path / "results"
    rc, out, err = lowbit("bench", "--device", "cpu", "--out", str(out_dir))
    assert rc == 0, err
    data = json.loads((out_dir / "bench.json").read_text())
    rows = data["rows"]
    assert len(rows) == 2 * 2 * 4 * 3  # ops x shapes x M x impls
    assert {r["package"] for r in rows} == {"fake_ok"}  # the command's name, not the row's "fake"
    assert data["environment"]["device"]["device"] == "cpu"
    assert data["packages"][0]["rows"] == 48
    with open(out_dir / "bench.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows)
    assert list(csv_rows[0]) == ["package", "op", "shape", "M", "impl", "us", "metric", "metric_name"]
    assert float(csv_rows[0]["us"]) == rows[0]["us"]
    md = (out_dir / "bench.md").read_text()
    assert "### fake_gemm" in md and "### fake_quant" in md
    assert ("| shape | M | lowbit TFLOP/s | torch.mm bf16 TFLOP/s | copy floor TFLOP/s | lowbit µs "
            "| vs best baseline |") in md
    # lowbit 1.0x the time, torch 1.5x, the floor (faster) is not a baseline
    assert "| N=64 K=128 | 16 | 61.5 | 41 | 123 | 26 | 1.50x |" in md
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    if _has_matplotlib():
        assert pngs == ["fake_ok.fake_gemm.png", "fake_ok.fake_quant.png"]
        assert all((out_dir / p).read_bytes()[:8] == PNG_MAGIC for p in pngs)
        assert "![fake_ok fake_gemm](fake_ok.fake_gemm.png)" in md
    else:
        assert pngs == [] and "matplotlib is not installed" in err
    assert "fake_ok · fake_gemm" in out and "wrote " in out


def test_without_matplotlib_tables_are_still_written(lowbit, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now fails
    rc, _, err = lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path))
    assert rc == 0
    assert "matplotlib is not installed: no PNG plots" in err
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "bench.md").exists() and "![" not in (tmp_path / "bench.md").read_text()


def test_default_out_dir_and_no_files(lowbit, tmp_path):
    rc, out, _ = lowbit("bench", "-q", "--device", "cpu", "--no-files")
    assert rc == 0 and list(tmp_path.iterdir()) == [] and "wrote" not in out
    rc, out, _ = lowbit("bench", "-q", "--device", "cpu")
    assert rc == 0
    assert (tmp_path / "lowbit-bench" / "bench.md").exists()
    assert "wrote lowbit-bench/bench.json" in out


def test_progress_lines_on_stderr(lowbit):
    rc, out, err = lowbit("bench", "--device", "cpu", "--no-files")
    assert rc == 0
    cases = [ln for ln in err.splitlines() if ln.startswith("[1/1 fake_ok")]
    assert len(cases) == 16 and cases[0].endswith("fake_gemm N=64 K=128 M=1")
    assert "[1/1 fake_ok" not in out
    rc, _, err = lowbit("bench", "--quiet", "--device", "cpu", "--no-files")
    assert rc == 0 and err == ""


def test_shapes_and_quick_reach_the_package(lowbit):
    rc, out, _ = lowbit("bench", "-q", "--json", "--device", "cpu", "--shapes", "llama3-8b", "--quick")
    assert rc == 0
    assert lowbit.calls == [("bench", "cpu", ["llama3-8b"], True)]  # the package's spelling
    rows = json.loads(out)["rows"]
    assert {r["shape"] for r in rows} == {"N=64 K=128"}
    assert {r["M"] for r in rows} == {1, 16}


def test_models_a_package_lacks_are_noted(lowbit, tmp_path):
    rc, out, err = lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path),
                          "--shapes", "Qwen2.5-72B,LLAMA-3-70B")
    assert rc == 0
    assert lowbit.calls == [("bench", "cpu", ["llama3-70b"], False)]
    assert "[1/1] fake_ok: no shapes for Qwen2.5-72B" in err
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["models"] == ["Qwen2.5-72B", "Llama-3-70B"]
    assert {r["shape"] for r in data["rows"]} == {"N=128 K=64"}
    assert "- fake_ok: no shapes for Qwen2.5-72B" in (tmp_path / "bench.md").read_text()


def test_no_package_has_the_model(lowbit):
    rc, out, _ = lowbit("bench", "-q", "--device", "cpu", "--shapes", "deepseek-r1")
    assert rc == 1 and lowbit.calls == []
    assert "skip  fake_ok: no shapes for DeepSeek-R1" in out


def test_json_output_is_the_report(lowbit):
    rc, out, _ = lowbit("bench", "--json", "--device", "cpu")
    assert rc == 0
    data = json.loads(out)  # stdout holds nothing but the JSON
    assert len(data["rows"]) == 48 and data["quick"] is False and data["models"] is None
    assert data["command"] == "lowbit bench --json --device cpu"


def test_broken_packages_are_reported_and_the_rest_still_runs(lowbit, tmp_path):
    rc, out, err = lowbit("bench", "--device", "cpu", "--out", str(tmp_path),
                          families=["fake_broken", "fake_ok", "fake_raises", MISSING])
    assert rc == 1
    assert "[1/4] fake_broken: import failed: ImportError" in err
    assert "[3/4] fake_raises: bench failed: RuntimeError: fake bench exploded" in err
    assert "[4/4] missing: not installed, skipped" in err
    assert "Traceback" not in out + err
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {r["package"] for r in data["rows"]} == {"fake_ok"} and len(data["rows"]) == 48
    md = (tmp_path / "bench.md").read_text()
    assert "## Not benchmarked or incomplete" in md
    assert "- fake_broken: import failed: ImportError: lowbit: compiled extension _C.so" in md
    assert "- fake_raises: bench failed: RuntimeError: fake bench exploded" in md
    assert "- missing: not installed" in md


def test_missing_packages_alone_do_not_fail(lowbit):
    rc, _, _ = lowbit("bench", "-q", "--device", "cpu", families=["fake_ok", MISSING])
    assert rc == 0


def test_malformed_rows_are_skipped_and_reported(lowbit):
    rc, out, _ = lowbit("bench", "-q", "--json", "--device", "cpu", families=["fake_fail"])
    assert rc == 1
    data = json.loads(out)
    assert len(data["rows"]) == 1 and data["rows"][0]["impl"] == "lowbit"
    assert "1 malformed bench rows skipped" in data["packages"][0]["error"]


def test_subprocess_entry_point(lowbit_subprocess, tmp_path):
    p = lowbit_subprocess("bench", "-q", "--device", "cpu", "--quick", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "bench.md").exists() and (tmp_path / "bench.csv").exists()
    assert len(json.loads((tmp_path / "bench.json").read_text())["rows"]) == 2 * 2 * 2 * 3


def test_merge_keeps_other_packages_results(lowbit, tmp_path):
    rc, _, _ = lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path), families=["fake_fail"])
    assert rc == 1  # its malformed row
    rc, _, err = lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path), "--merge",
                        "-p", "fake_ok", families=["fake_ok", "fake_fail"])
    assert rc == 0, err
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [p["package"] for p in data["packages"]] == ["fake_fail", "fake_ok"]
    assert sum(r["package"] == "fake_fail" for r in data["rows"]) == 1
    assert sum(r["package"] == "fake_ok" for r in data["rows"]) == 48
    assert data["merged"][0]["packages"] == ["fake_fail"]
    md = (tmp_path / "bench.md").read_text()
    assert "## fake_fail" in md and "## fake_ok" in md
    assert "; fake_fail from `lowbit bench -q --device cpu --out" in md
    # the same package again replaces its rows rather than adding to them
    rc, _, _ = lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path), "--merge", "--quick",
                      "-p", "fake_ok", families=["fake_ok", "fake_fail"])
    data = json.loads((tmp_path / "bench.json").read_text())
    assert sum(r["package"] == "fake_ok" for r in data["rows"]) == 2 * 2 * 2 * 3
    assert sum(r["package"] == "fake_fail" for r in data["rows"]) == 1


def test_without_merge_the_folder_is_rewritten(lowbit, tmp_path):
    lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path), families=["fake_fail"])
    lowbit("bench", "-q", "--device", "cpu", "--out", str(tmp_path), families=["fake_ok"])
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {r["package"] for r in data["rows"]} == {"fake_ok"}


def test_sigterm_writes_partial_results(lowbit_subprocess, tmp_path):
    import signal
    import subprocess
    import time

    proc = lowbit_subprocess.popen("bench", "--device", "cpu", "--out", str(tmp_path),
                                   families=["fake_ok", "fake_slow"])
    deadline = time.time() + 60
    line = ""
    while "fake_slow case 1" not in line and time.time() < deadline:
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    err = proc.stderr.read()
    assert rc == 130, err
    assert "lowbit: interrupted; partial results written" in err and "Traceback" not in err
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {r["package"] for r in data["rows"]} == {"fake_ok"}
    assert data["packages"][1]["error"] == "interrupted"


def test_pivot_speedup_is_against_the_fastest_real_baseline():
    from lowbit.kernels._report import pivot

    rows = [{"package": "p", "op": "o", "shape": "s", "M": 1, "impl": i, "us": us,
             "metric": 1.0 / us, "metric_name": "TB/s"}
            for i, us in (("lowbit", 10.0), ("A", 20.0), ("B", 15.0), ("copy floor", 5.0))]
    headers, table = pivot(rows)
    assert headers == ["shape", "M", "lowbit TB/s", "A TB/s", "B TB/s", "copy floor TB/s",
                       "lowbit µs", "vs best baseline"]
    assert table == [["s", 1, 0.1, 0.05, 1 / 15, 0.2, 10.0, "1.50x"]]


def test_pivot_speedup_ignores_rows_timed_after_a_kernel():
    from lowbit.kernels._report import pivot

    rows = [{"package": "p", "op": "o", "shape": "s", "M": 1, "impl": i, "us": us,
             "metric": 1.0 / us, "metric_name": "TB/s"}
            for i, us in (("A", 20.0), ("A after a kernel", 8.0), ("lowbit", 10.0),
                          ("lowbit after a kernel", 16.0))]
    headers, table = pivot(rows)
    assert headers[-2:] == ["lowbit µs", "vs best baseline"]
    assert table[0][-2:] == [10.0, "2.00x"]  # lowbit back to back vs A back to back


def test_after_kernel_suffix_is_the_timers():
    """_report stays torch-free, so it spells the suffix itself: it must be the
    one lowbit.testing.bench.time_cuda_after_kernel appends."""
    from lowbit.kernels._report import is_after_kernel
    from lowbit.testing.bench import AFTER_KERNEL

    assert is_after_kernel("lowbit" + AFTER_KERNEL)
    assert not is_after_kernel("lowbit")


def test_plot_speedups_compare_within_a_timing_mode():
    from lowbit.kernels._plot import speedup_series

    rows = [{"package": "p", "op": "o", "shape": "s", "M": 1, "impl": i, "us": us,
             "metric": 1.0, "metric_name": "TB/s"}
            for i, us in (("A", 20.0), ("A after a kernel", 30.0), ("lowbit", 10.0),
                          ("lowbit after a kernel", 15.0))]
    assert speedup_series(rows) == {"s": {"lowbit": [(1, 2.0)], "lowbit after a kernel": [(1, 2.0)]}}


def test_other_units_are_converted_through_time():
    from lowbit.kernels._report import pivot

    rows = [{"package": "p", "op": "o", "shape": "s", "M": 4, "impl": "lowbit", "us": 10.0,
             "metric": 50.0, "metric_name": "TFLOP/s", "model": "llama3-8b"},
            {"package": "p", "op": "o", "shape": "s", "M": 4, "impl": "copy floor", "us": 4.0,
             "metric": 3.0, "metric_name": "TB/s", "model": "llama3-8b"}]
    headers, table = pivot(rows)
    assert headers[2:4] == ["lowbit TFLOP/s", "copy floor TFLOP/s*"]
    assert table == [["llama3-8b s", 4, 50.0, 125.0, 10.0]]  # 50 TFLOP/s * 10 us / 4 us


def _mixed_rows():
    # Like w4a8-mm: TB/s at small M, TFLOP/s at large M, the floor always TB/s.
    rows = []
    for m, unit in ((16, "TB/s"), (256, "TFLOP/s")):
        for impl, us, metric in (("lowbit", 10.0, 2.0), ("torch.mm bf16", 20.0, 1.5)):
            rows.append({"package": "p", "op": "o", "shape": "N=8 K=8", "M": m, "impl": impl,
                         "us": us, "metric": metric, "metric_name": unit})
        rows.append({"package": "p", "op": "o", "shape": "N=8 K=8", "M": m, "impl": "copy floor",
                     "us": 5.0, "metric": 3.0, "metric_name": "TB/s"})
    return rows


def test_units_changing_with_m_are_kept_per_row():
    from lowbit.kernels._report import pivot

    headers, table = pivot(_mixed_rows())
    assert headers == ["shape", "M", "lowbit", "torch.mm bf16", "copy floor*", "lowbit µs",
                       "vs best baseline"]
    assert table[0] == ["N=8 K=8", 16, "2 TB/s", "1.5 TB/s", "3 TB/s", 10.0, "2.00x"]
    # at M=256 the floor is converted into lowbit's TFLOP/s through its time: 2 * 10 / 5
    assert table[1] == ["N=8 K=8", 256, "2 TFLOP/s", "1.5 TFLOP/s", "4 TFLOP/s", 10.0, "2.00x"]


def test_plot_of_mixed_units_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from lowbit.kernels._plot import plot

    plot(tmp_path / "x.png", "p", "o", _mixed_rows())
    assert (tmp_path / "x.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("missing_impl", ["lowbit", "A"])
def test_pivot_with_missing_cells(missing_impl):
    from lowbit.kernels._report import pivot

    rows = [{"package": "p", "op": "o", "shape": "s", "M": m, "impl": i, "us": 2.0,
             "metric": 1.0, "metric_name": "TB/s"}
            for m in (1, 2) for i in ("lowbit", "A") if not (m == 2 and i == missing_impl)]
    _, table = pivot(rows)
    assert len(table) == 2 and table[1][-1] == ""  # no speed-up without both sides


def test_plot_shows_speedup_over_the_fastest_baseline():
    from lowbit.kernels._plot import speedup_series

    rows = [{"package": "p", "op": "o", "shape": "s", "M": m, "impl": i, "us": us,
             "metric": 1.0, "metric_name": "TB/s"}
            for m in (1, 64) for i, us in (("lowbit", 10.0 * m), ("A", 20.0), ("B", 15.0),
                                            ("copy floor", 5.0))]
    series = speedup_series(rows)
    assert series == {"s": {"lowbit": [(1, 1.5), (64, 15.0 / 640)], "copy floor": [(1, 3.0), (64, 3.0)]}}
    assert speedup_series([r for r in rows if r["impl"] != "lowbit"]) == {}
