"""Smoke run of experiments/exp_gpu_vs_npu.py on the quick models: tables, plots, headline."""

import csv

import pytest

from experiments import exp_gpu_vs_npu


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_quick_run(tmp_path, model_cache):
    headline = exp_gpu_vs_npu.main(["--quick", "--out", str(tmp_path)])
    results = _rows(tmp_path / "results.csv")
    for col in ("network", "design", "precision", "latency_s", "energy_j", "power_w",
                "tops_per_w", "peak_tops", "data_movement_share", "arithmetic_share",
                "energy_dram_j", "seed"):  # fmt: skip
        assert col in results[0], col
    assert {r["network"] for r in results} == {"cnn", "transformer"}
    for r in results:
        assert float(r["tops_per_w"]) > 0
        share = float(r["data_movement_share"]) + float(r["arithmetic_share"])
        assert share == pytest.approx(1.0, abs=1e-9)  # no host energy on these designs
    layers = _rows(tmp_path / "layers.csv")
    assert {r["bound"] for r in layers} <= {"memory", "compute"}
    assert {"intensity_ops_per_byte", "ridge_ops_per_byte", "energy_gain"} <= set(layers[0])
    designs = {r["design"] + " " + r["precision"]: r for r in _rows(tmp_path / "designs.csv")}
    matched = float(designs["npu-power-matched-edge int8"]["full_load_power_w"])
    gpu = float(designs["edge-gpu-like int8"]["full_load_power_w"])
    assert matched == pytest.approx(gpu, rel=0.15)
    peak = float(designs["npu-peak-matched-edge int8"]["peak_tops"])
    assert peak == pytest.approx(float(designs["edge-gpu-like int8"]["peak_tops"]), rel=1e-9)
    for name in ("tops_per_w", "energy_breakdown"):
        for ext in ("png", "svg"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
    for key in ("tops_per_w_ratio_int8", "claim_10x_held", "data_movement_share_min",
                "claim_data_movement_dominates_held", "precision_gain_by_bound"):  # fmt: skip
        assert key in headline, key
    assert set(headline["tops_per_w_ratio_int8"]) == set(exp_gpu_vs_npu.PAIRS)
    assert headline["all_npu_layers_fit"]
    assert (tmp_path / "headline.json").exists()
