"""``experiments/exp_precision.py``: a quick run writes its table, figure and headline."""

import csv

import pytest

from experiments import exp_precision
from experiments.common import MODEL_CACHE_ENV

COLUMNS = {
    "kind",
    "label",
    "acc_bits",
    "w_bits_per_layer",
    "a_bits_per_layer",
    "accuracy",
    "accuracy_proxy",
    "proxy_error",
    "energy_j",
    "latency_s",
    "default_mapping_energy_j",
    "pareto",
    "chosen",
    "drop_pt",
    "min_accuracy",
    "seed",
}

pytestmark = pytest.mark.slow(whole_module=True)  # one quick run of over a minute


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, model_cache_dir):
    out = tmp_path_factory.mktemp("exp_precision")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MODEL_CACHE_ENV, str(model_cache_dir))
        headline = exp_precision.main(["--quick", "--out", str(out / "run")])
    return out / "run", headline


def test_designs_csv_has_uniform_and_mixed_rows_with_units(quick_run):
    out, _ = quick_run
    with open(out / "designs.csv") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) >= COLUMNS
    uniform = [r for r in rows if r["kind"] == "uniform"]
    # 16 bits twice (preset and wide accumulator), then 8, 6, 4, 2.
    assert [r["label"] for r in uniform] == [
        "w16a16 acc32",
        f"w16a16 acc{exp_precision.WIDE_ACC_BITS}",
        "w8a8",
        "w6a6",
        "w4a4",
        "w2a2",
    ]
    assert any(r["kind"] == "mixed" for r in rows)
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0
        assert float(r["energy_j"]) > 0 and float(r["latency_s"]) > 0
        assert (
            abs(float(r["accuracy"]) - float(r["accuracy_proxy"]) - float(r["proxy_error"])) < 1e-12
        )
    assert any(r["pareto"] == "True" for r in rows)


def test_wider_widths_cost_more_energy(quick_run):
    out, _ = quick_run
    with open(out / "designs.csv") as f:
        energy = {r["label"]: float(r["energy_j"]) for r in csv.DictReader(f)}
    assert energy["w2a2"] < energy["w4a4"] < energy["w6a6"] < energy["w8a8"]
    assert energy["w8a8"] < energy[f"w16a16 acc{exp_precision.WIDE_ACC_BITS}"]


def test_figure_and_headline(quick_run):
    out, headline = quick_run
    for ext in ("png", "svg"):
        assert (out / f"accuracy_energy.{ext}").stat().st_size > 0
    assert (out / "calibration.csv").exists() and (out / "headline.json").exists()
    for key in (
        "float_accuracy",
        "uniform",
        "mixed_by_floor",
        "best_mixed_energy_saving",
        "proxy_error_mixed",
        "proxy_error_uniform",
    ):
        assert key in headline
    assert headline["proxy_error_mixed"]["n"] >= 1
    assert set(headline["uniform"]) >= {"w8a8", "w4a4"}
