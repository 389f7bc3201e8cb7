"""Smoke run of experiments/exp_fusion_fallback.py on the quick models."""

import csv

import pytest

from experiments import exp_fusion_fallback


@pytest.mark.slow
def test_quick_run(tmp_path, model_cache):
    headline = exp_fusion_fallback.main(["--quick", "--out", str(tmp_path)])
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for col in ("network", "variant", "host_layers", "latency_s", "energy_j", "edp_js",
                "latency_ratio", "energy_ratio", "seed"):  # fmt: skip
        assert col in rows[0], col
    by = {(r["network"], r["variant"]): r for r in rows}
    assert set(by) == {(n, v) for n in ("cnn", "transformer") for v in exp_fusion_fallback.VARIANTS}
    for n in ("cnn", "transformer"):
        assert float(by[n, "baseline"]["latency_ratio"]) == 1.0
        assert float(by[n, "no_fusion"]["energy_ratio"]) > 1.0  # round trips cost DRAM energy
    # the CNN has no softmax: that variant moves nothing and costs what the baseline costs
    assert by["cnn", "host_softmax"]["host_layers"] == "0"
    assert float(by["cnn", "host_softmax"]["energy_ratio"]) == pytest.approx(1.0)
    assert int(by["transformer", "host_softmax"]["host_layers"]) > 0
    for ext in ("png", "svg"):
        assert (tmp_path / f"ratios.{ext}").stat().st_size > 0
    mult = headline["multipliers"]
    assert set(mult) == {"cnn", "transformer"}
    assert set(mult["transformer"]) == set(exp_fusion_fallback.VARIANTS) - {"baseline"}
    assert {"latency_x", "energy_x", "host_layers"} == set(mult["transformer"]["no_fusion"])
