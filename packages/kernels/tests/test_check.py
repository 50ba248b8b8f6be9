"""`lowbit check`: every op against the reference, exit status on failure."""

from __future__ import annotations

import json

MISSING = "missing=lowbit.definitely_not_installed_family"


def test_all_passing(lowbit):
    rc, out, err = lowbit("check", "--device", "cpu", families=["fake_ok", MISSING])
    assert rc == 0, out + err
    assert lowbit.calls == [("selfcheck", "cpu")]
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("fake_ok ")]
    assert [r[1] for r in rows] == ["fake_quant", "fake_gemm"]
    assert all("PASS" in r for r in rows)
    assert "skip  missing: not installed" in out  # not installed is not a failure
    assert out.strip().splitlines()[-1] == "PASSED: 2 of 2 checks passed, 1 not installed"


def test_failed_comparison_exits_1_and_shows_the_error(lowbit):
    rc, out, _ = lowbit("check", "--device", "cpu", families=["fake_ok", "fake_fail"])
    assert rc == 1
    bad = [ln.split() for ln in out.splitlines() if ln.startswith("fake_fail ") and "FAIL" in ln]
    assert len(bad) == 1 and bad[0][-3:] == ["rel_err", "0.5", "0.01"]
    assert out.strip().splitlines()[-1] == "FAILED: 3 of 4 checks passed"
    # an op that runs here without a check is named (the SM90-only one does not run on CPU)
    assert "note  fake_fail: no check for fake_unchecked\n" in out


def test_installed_package_that_does_not_import_fails(lowbit):
    rc, out, err = lowbit("check", "--device", "cpu", families=["fake_ok", "fake_broken"])
    assert rc == 1
    assert ("FAIL  fake_broken: import failed: ImportError: lowbit: compiled extension _C.so "
            "not found in /somewhere/fake_broken") in out
    assert "Traceback" not in out + err


def test_verbose_prints_the_traceback(lowbit):
    rc, _, err = lowbit("check", "-v", "--device", "cpu", families=["fake_broken"])
    assert rc == 1
    assert "Traceback" in err and "fake_broken/__init__.py" in err


def test_selfcheck_that_raises_is_one_line(lowbit):
    rc, out, err = lowbit("check", "--device", "cpu", families=["fake_raises"])
    assert rc == 1
    assert ("FAIL  fake_raises: selfcheck failed: RuntimeError: fake_boom: argument 'input': "
            "expected a CUDA tensor, got cpu") in out
    assert "second line" not in out and "Traceback" not in out + err


def test_requested_package_not_installed_fails(lowbit):
    rc, out, _ = lowbit("check", "--device", "cpu", "-p", "missing", families=["fake_ok", MISSING])
    assert rc == 1
    assert "FAIL  missing: not installed" in out
    assert lowbit.calls == []  # fake_ok was not selected


def test_nothing_installed_fails(lowbit):
    rc, out, _ = lowbit("check", "--device", "cpu", families=[MISSING])
    assert rc == 1 and "nothing was checked" in out


def test_package_selection_accepts_distribution_spelling(lowbit):
    rc, out, _ = lowbit("check", "--device", "cpu", "--package", "lowbit-fake-ok",
                        families=["fake_ok", "fake_fail"])
    assert rc == 0
    assert "fake_fail" not in out


def test_json_output(lowbit):
    rc, out, _ = lowbit("check", "--json", "--device", "cpu",
                        families=["fake_ok", "fake_fail", "fake_broken", MISSING])
    assert rc == 1
    data = json.loads(out)  # stdout is JSON only
    assert data["passed"] is False
    assert len(data["results"]) == 4
    assert [r["passed"] for r in data["results"]] == [True, True, False, True]
    assert data["results"][2] == {"package": "fake_fail", "op": "fake_bad", "problem": "M=8 N=16",
                                  "passed": False, "metric": "rel_err", "value": 0.5, "limit": 0.01}
    pk = {p["package"]: p for p in data["packages"]}
    assert pk["fake_ok"]["unchecked"] == [] and pk["fake_fail"]["unchecked"] == ["fake_unchecked"]
    assert pk["fake_broken"]["error"].startswith("import failed: ImportError")
    assert pk["missing"]["status"] == "not installed" and pk["missing"]["error"] is None


def test_out_writes_markdown_and_json(lowbit, tmp_path):
    rc, out, _ = lowbit("check", "--device", "cpu", "--out", str(tmp_path / "o"),
                        families=["fake_ok", "fake_fail"])
    assert rc == 1
    data = json.loads((tmp_path / "o" / "check.json").read_text())
    assert data["passed"] is False and len(data["results"]) == 4
    md = (tmp_path / "o" / "check.md").read_text()
    assert md.startswith("# lowbit check")
    assert "| fake_fail | fake_bad | M=8 N=16 | **FAIL** | rel_err | 0.5 | 0.01 |" in md
    assert "FAILED: 3 of 4 checks passed" in md
    assert "- fake_fail: no check for fake_unchecked" in md
