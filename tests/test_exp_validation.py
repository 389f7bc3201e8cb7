"""Smoke runs of experiments/exp_validation.py, with and without the reference data."""

import csv

import pytest

from experiments import exp_validation
from npu_dse import peers, peers_timeloop
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
    assert headline["zigzag"].startswith("skipped") and headline["timeloop"].startswith("skipped")
    ratios = _rows(tmp_path / "run" / "ratios.csv")
    assert {r["reference"] for r in ratios} == {"datasheet", "Eyeriss (JSSC 2017)"}
    assert len(ratios) == len(sheets) + 2  # Eyeriss: on-chip power and latency
    eyeriss = _rows(tmp_path / "run" / "eyeriss.csv")[0]
    assert float(eyeriss["power_ratio"]) == pytest.approx(headline["eyeriss_power_ratio"])
    assert float(eyeriss["onchip_rf_j"]) > 0  # the PE-local level is itemised
    assert (tmp_path / "run" / "ratios.png").stat().st_size > 0


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
    ratios = _rows(tmp_path / "ratios.csv")
    refs = {r["reference"] for r in ratios}
    assert refs >= {"SCALE-Sim 3.0.0", "datasheet"}
    for r in ratios:  # every ratio is npu-dse over the reference, as written
        assert float(r["ratio"]) == pytest.approx(float(r["npu_dse"]) / float(r["reference_value"]))
    if peers.zigzag_available()[0]:
        zz = {
            (r["case"], r["metric"]): float(r["ratio"])
            for r in ratios
            if "ZigZag" in r["reference"]
        }
        assert len(zz) == 12  # energy and latency on five accelerators, DRAM on two
        assert zz["edge_tpu_like", "energy"] == headline["zigzag_energy_ratio"]["edge_tpu_like"]
        assert (tmp_path / "zigzag_tpu_like.json").exists()
    if peers_timeloop.timeloop_available()[0]:
        assert set(headline["timeloop_dram_ratio"]) == set(peers_timeloop.TIMELOOP_DESIGNS)
    for name in ("compute_parity", "stall_parity", "ratios"):
        for ext in ("png", "svg"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
