"""Smoke run of the main job (experiments/demo.py --quick) and of run_all's report."""

import csv
import json

import pytest

from experiments import demo, run_all


@pytest.mark.slow
def test_demo_quick_writes_the_run_folder(tmp_path, model_cache):
    headline = demo.main(["--quick", "--out", str(tmp_path)])
    with open(tmp_path / "precision.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["preset"] for r in rows} == set(demo.NPU_PRESETS)
    assert {"precision", "accuracy", "latency_s", "energy_j", "power_w", "tops_per_w"} <= set(
        rows[0]
    )
    with open(tmp_path / "evaluations.csv", newline="") as f:
        evals = list(csv.DictReader(f))
    assert {r["method"] for r in evals} == {"gradient", "random"}
    assert {"latency_s", "energy_j", "accuracy", "feasible"} <= set(evals[0])
    for stem in ("pareto", "search_trace", "accuracy_energy"):
        for ext in ("png", "svg"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["seed"] == 0 and "jax" in meta["versions"] and "budgets" in meta["config"]
    summary = (tmp_path / "summary.md").read_text()
    assert "## Design search" in summary and "edge-tpu-like" in summary
    assert 0 < headline["float_accuracy"] <= 1
    # The search finds a design under the default budgets, and it meets the floor when executed.
    assert headline["best_energy_j"] is not None
    assert headline["best_accuracy_measured"] >= meta["config"]["budgets"]["min_accuracy"]


def test_run_all_reports_results_and_failures(tmp_path, model_cache, monkeypatch):
    monkeypatch.setattr(
        run_all,
        "EXPERIMENTS",
        (("exp_array_scaling", "Array scaling"), ("no_such_experiment", "Missing")),
    )
    code = run_all.main(["--quick", "--out", str(tmp_path)])
    report = (tmp_path / "report.md").read_text()
    assert code == 1  # one experiment failed, and the report says so
    assert "## Array scaling" in report and "](exp_array_scaling/" in report
    assert "**Failed:**" in report and "no_such_experiment" in report
