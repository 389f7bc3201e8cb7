"""``experiments/exp_search_baselines.py``: a quick run writes its tables, figures and headline."""

import csv

import pytest

from experiments import exp_search_baselines

METHODS = {"gradient", "random", "nsga2", "exhaustive"}

pytestmark = pytest.mark.slow(whole_module=True)  # one quick run of over a minute


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp_search_baselines") / "run"
    headline = exp_search_baselines.main(["--quick", "--out", str(out)])
    return out, headline


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_summary_has_every_method_of_each_part(quick_run):
    out, _ = quick_run
    rows = _read(out / "summary.csv")
    assert {"part", "method", "evaluations", "wall_s", "best_edp_js", "hypervolume", "seed"} <= set(
        rows[0]
    )
    assert {r["method"] for r in rows if r["part"] == "small"} == METHODS
    assert {r["method"] for r in rows if r["part"] == "large"} == METHODS - {"exhaustive"}
    small = {r["method"]: r for r in rows if r["part"] == "small"}
    optimum = float(small["exhaustive"]["best_edp_js"])
    for r in small.values():  # nothing beats exhaustive search on its own space
        assert float(r["best_edp_js"]) >= optimum * (1 - 1e-12)
        assert float(r["gap_to_exhaustive"]) >= -1e-12


def test_evaluation_tables_and_hypervolume(quick_run):
    out, _ = quick_run
    for part in ("small", "large"):
        rows = _read(out / f"{part}_evaluations.csv")
        assert {"method", "wall_s", "latency_s", "energy_j", "edp_js", "feasible"} <= set(rows[0])
    hv = _read(out / "hypervolume.csv")
    assert {"part", "method", "wall_s", "evaluations", "hypervolume"} <= set(hv[0])
    for r in hv:
        assert 0.0 <= float(r["hypervolume"]) <= 1.0
    for part in ("small", "large"):  # hypervolume never falls as time goes on
        for method in {r["method"] for r in hv if r["part"] == part}:
            series = [
                float(r["hypervolume"]) for r in hv if (r["part"], r["method"]) == (part, method)
            ]
            assert all(b >= a - 1e-12 for a, b in zip(series[:-1], series[1:], strict=True))


def test_figures_and_headline(quick_run):
    out, headline = quick_run
    stems = ("small_trace", "small_pareto", "large_trace", "large_pareto", "hypervolume")
    for stem in stems:
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0
    assert set(headline["small"]["best_edp_js"]) == METHODS
    assert set(headline["small"]["hypervolume"]) == METHODS
    assert set(headline["small"]["gap_to_exhaustive"]) == METHODS - {"exhaustive"}
    assert set(headline["large"]["best_edp_js"]) == METHODS - {"exhaustive"}
