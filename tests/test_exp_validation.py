"""Smoke runs of experiments/exp_validation.py, with and without the reference data."""

import csv

import pytest

from experiments import exp_validation
from npu_dse.reference import REFERENCE_ENV, reference_path


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_datasheet_only_without_reference(tmp_path, monkeypatch):
    monkeypatch.setenv(REFERENCE_ENV, str(tmp_path / "absent.csv"))
    headline = exp_validation.main(["--quick", "--out", str(tmp_path / "run")])
    assert headline["reference"].startswith("skipped")
    sheets = _rows(tmp_path / "run" / "datasheet.csv")
    assert {r["design"] for r in sheets} >= {"tpu-v1-like", "edge-tpu-like"}
    assert headline["datasheet_max_abs_rel_error"] < 0.02
    assert not (tmp_path / "run" / "compute_parity.csv").exists()


def test_quick_run_matches_scalesim(tmp_path):
    if not reference_path().exists():
        pytest.skip(f"SCALE-Sim reference data not found at {reference_path()}")
    headline = exp_validation.main(["--quick", "--out", str(tmp_path)])
    parity = _rows(tmp_path / "compute_parity.csv")
    assert {"scalesim_compute_cycles", "ours_compute_cycles", "rel_error"} <= set(parity[0])
    errors = _rows(tmp_path / "compute_error.csv")
    assert {"setting", "dataflow", "max_abs_rel_error"} <= set(errors[0])
    assert headline["compute_cycles_max_abs_rel_error"] == 0.0
    summary = _rows(tmp_path / "stall_error.csv")
    assert {r["memory_model"] for r in summary} == {"scalesim", "tiled"}
    assert set(headline["stall_error"]) >= {"scalesim_all", "tiled_all"}
    for name in ("compute_parity", "stall_parity"):
        for ext in ("png", "svg"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
