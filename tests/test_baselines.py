"""Random search, NSGA-II and exhaustive search on a two-layer workload and a 144-design space."""

import logging

import numpy as np
import pytest

from dse import baselines
from dse import objective as obj
from dse.problem import Problem, SearchBudget
from dse.space import Space
from hw import layers

BATCH = 32
FREE = obj.Budgets()
SETTINGS = {
    baselines.random_search: baselines.RandomSettings,
    baselines.nsga2_search: baselines.NSGA2Settings,
    baselines.exhaustive_search: baselines.ExhaustiveSettings,
}


def go(
    search,
    space,
    workload,
    objective,
    budgets,
    *,
    evaluations=None,
    time_s=None,
    seed=0,
    progress=None,
    **settings,
):
    """``search`` through the common signature; ``settings`` are its settings' fields."""
    return search(
        Problem(space, workload, objective, budgets),
        SearchBudget(evaluations, time_s),
        seed=seed,
        settings=SETTINGS[search](**settings),
        progress=progress,
    )


@pytest.fixture(scope="module")
def space():
    # 3 rows x 3 cols x 2 dataflows x 2 SRAM sizes = 36 hardware points; x 2 x 2 widths = 144.
    return Space.from_dict(
        {
            "rows": [8, 16, 32],
            "cols": [8, 16, 32],
            "dataflow": ["os", "ws"],
            "sram_kib": [64, 256],
            "w_bits": [4, 8],
            "a_bits": [8],
            "per_layer_bits": True,
        }
    )


@pytest.fixture(scope="module")
def workload():
    return layers.workload(
        [
            layers.gemm("g", m=64, k=64, n=64),
            layers.conv2d(
                "c", ifmap_h=14, ifmap_w=14, channels=64, num_filters=64, filter_h=3, filter_w=3
            ),
        ]
    )


@pytest.fixture(scope="module")
def exhaustive(space, workload):
    return go(baselines.exhaustive_search, space, workload, "edp", FREE, batch=BATCH)


def _values(result, key="edp_js"):
    return [row[key] for row in result.rows]


def test_exhaustive_visits_every_design_once(space, workload, exhaustive):
    assert baselines.exhaustive_size(space, workload) == (36, 4)
    assert exhaustive.evaluations == len(exhaustive.rows) == 144
    keys = {
        (r["rows"], r["cols"], r["dataflow"], r["sram_kib"], r["w_bits"], r["mean_w_bits"])
        for r in exhaustive.rows
    }
    assert len(keys) == 144 - 36  # (4, 8) and (8, 4) share max and mean widths
    assert exhaustive.method == "exhaustive"
    assert exhaustive.best_metrics["edp_js"] == min(_values(exhaustive))


@pytest.mark.parametrize("search", [baselines.random_search, baselines.nsga2_search])
def test_exhaustive_is_at_least_as_good(space, workload, exhaustive, search):
    res = go(search, space, workload, "edp", FREE, evaluations=48, batch=BATCH, seed=1)
    assert res.evaluations == 48
    assert exhaustive.best_metrics["edp_js"] <= min(_values(res))


@pytest.mark.parametrize("search", [baselines.random_search, baselines.nsga2_search])
def test_same_seed_same_result(space, workload, search):
    kw = {"evaluations": 40, "batch": BATCH, "seed": 3}
    if search is baselines.nsga2_search:
        kw["pop_size"] = 16
    a = go(search, space, workload, "energy", FREE, **kw)
    b = go(search, space, workload, "energy", FREE, **kw)
    assert _values(a, "energy_j") == _values(b, "energy_j")
    assert a.best_metrics == b.best_metrics
    assert a.seed == 3


def test_random_seeds_differ(space, workload):
    a = go(
        baselines.random_search, space, workload, "edp", FREE, evaluations=32, batch=BATCH, seed=0
    )
    b = go(
        baselines.random_search, space, workload, "edp", FREE, evaluations=32, batch=BATCH, seed=1
    )
    assert _values(a) != _values(b)


@pytest.mark.parametrize(
    "search", [baselines.random_search, baselines.nsga2_search, baselines.exhaustive_search]
)
def test_evaluation_budget_is_exact(space, workload, search):
    seen = []
    res = go(
        search,
        space,
        workload,
        "edp",
        FREE,
        evaluations=37,
        batch=BATCH,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert res.evaluations == len(res.rows) == 37
    assert [r["evaluation"] for r in res.rows] == list(range(37))
    assert seen[-1][0] == 37
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_exhaustive_cut_short_warns(space, workload, caplog):
    with caplog.at_level(logging.WARNING, logger="dse.baselines"):
        res = go(
            baselines.exhaustive_search, space, workload, "edp", FREE, evaluations=40, batch=BATCH
        )
    assert res.evaluations == 40
    assert "40 of 144" in caplog.text


@pytest.mark.parametrize("search", list(SETTINGS))
def test_spent_time_budget_stops_before_any_batch(space, workload, search):
    """The clock starts when the method is called: a budget spent by then maps nothing."""
    res = go(search, space, workload, "edp", FREE, evaluations=10_000, time_s=1e-9, batch=BATCH)
    assert res.evaluations == res.spent_evaluations == len(res.rows) == 0
    assert res.best is None and res.stopped == "time"
    assert res.budget == SearchBudget(10_000, 1e-9)


@pytest.mark.parametrize("search", list(SETTINGS))
def test_result_records_budget_and_stop(space, workload, search):
    res = go(search, space, workload, "edp", FREE, evaluations=20, batch=BATCH)
    assert res.budget == SearchBudget(evaluations=20)
    assert res.stopped == "evaluations" and res.spent_evaluations == 20
    assert res.wall_s > 0


def test_exhaustive_without_budget_converges(exhaustive):
    assert exhaustive.stopped == "converged" and exhaustive.budget == SearchBudget()


@pytest.mark.parametrize(
    "search", [baselines.random_search, baselines.nsga2_search, baselines.exhaustive_search]
)
def test_infeasible_budget_reports_closest(space, workload, search):
    tight = obj.Budgets(max_latency_s=1e-12)
    res = go(search, space, workload, "edp", tight, evaluations=32, batch=BATCH)
    assert res.best is None and res.best_metrics is None
    assert res.closest is not None
    budget, miss = res.closest_miss
    assert budget == "latency_s" and miss > 0


def test_budgets_are_respected(space, workload, exhaustive):
    cap = float(np.median(_values(exhaustive, "area_mm2")))
    budgets = obj.Budgets(max_area_mm2=cap)
    res = go(baselines.exhaustive_search, space, workload, "edp", budgets, batch=BATCH)
    feasible = [r for r in res.rows if r["feasible"]]
    assert feasible and all(r["area_mm2"] <= cap for r in feasible)
    assert res.best_metrics["area_mm2"] <= cap
    assert res.best_metrics["edp_js"] == min(r["edp_js"] for r in feasible)


def test_exhaustive_counts_width_assignments(workload):
    relu = layers.vector("r", "relu", elems=1024)
    with_vector = layers.workload(
        [layers.gemm("g", m=64, k=64, n=64), relu, layers.gemm("h", m=64, k=64, n=64)]
    )
    spec = {"rows": [8, 16], "w_bits": [4, 8], "a_bits": [4, 8]}
    per_layer = Space.from_dict(spec)
    uniform = Space.from_dict({**spec, "per_layer_bits": False})
    # Per layer: 2 widths for each of 2 GEMM weights (the relu has none), 2 for 3 activations.
    assert baselines.exhaustive_size(per_layer, with_vector) == (2, 2**2 * 2**3)
    assert baselines.exhaustive_size(uniform, with_vector) == (2, 4)


def test_exhaustive_refuses_a_huge_space(workload):
    huge = Space.from_dict({"rows": {"min": 1, "max": 4096}, "cols": {"min": 1, "max": 4096}})
    with pytest.raises(ValueError, match="space too large for exhaustive search"):
        go(baselines.exhaustive_search, huge, workload, "edp", FREE)


def test_nsga2_fitness():
    m = {
        "latency_s": np.array([1e-3, 4e-3]),
        "energy_j": np.array([2.0, 1.0]),
        "power_w": np.array([1.0, 3.0]),
        "area_mm2": np.array([1.0, 1.0]),
        "fits": np.array([True, False]),
    }
    np.testing.assert_array_equal(
        baselines.nsga2_objectives(m, "energy"), [[2.0, 1e-3], [1.0, 4e-3]]
    )
    np.testing.assert_array_equal(baselines.nsga2_objectives(m, "edp"), [[1e-3, 2.0], [4e-3, 1.0]])
    # power 1 W and 3 W against 2 W: misses -0.5 and 0.5; the second design's tiles do not fit.
    g = baselines.nsga2_constraints(m, obj.Budgets(max_power_w=2.0))
    np.testing.assert_allclose(g, [[-0.5, 0.0], [0.5, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"evaluations": 0}, "budget evaluations must be a positive integer, got 0"),
        ({"evaluations": 2.5}, "budget evaluations"),
        ({"time_s": -1.0}, "budget time_s must be a positive finite number"),
        ({"time_s": float("inf")}, "budget time_s"),
        ({"batch": 0}, "batch must be an integer of at least 1, got 0"),
    ],
)
def test_bad_arguments(space, workload, kwargs, match):
    with pytest.raises(ValueError, match=match):
        go(baselines.random_search, space, workload, "edp", FREE, **kwargs)


def test_bad_objective(space, workload):
    with pytest.raises(ValueError, match="problem objective must be one of"):
        go(baselines.nsga2_search, space, workload, "area", FREE)


def test_bad_settings_and_checkpoint(space, workload):
    problem = Problem(space, workload, "edp", FREE)
    with pytest.raises(ValueError, match="pop_size"):
        baselines.NSGA2Settings(pop_size=1)
    with pytest.raises(ValueError, match="settings must be NSGA2Settings"):
        baselines.nsga2_search(problem, settings=baselines.RandomSettings())
    with pytest.raises(ValueError, match="keeps no checkpoints"):
        baselines.random_search(problem, checkpoint="somewhere")


def test_nsga2_stops_when_a_tiny_space_is_spent():
    """On a space smaller than one population, NSGA-II runs out of new designs and stops."""
    space = Space.from_dict({"rows": [8, 16], "cols": [8, 16], "w_bits": [8], "a_bits": [8]})
    wl = layers.workload([layers.gemm("g", m=32, k=32, n=32)])
    res = go(
        baselines.nsga2_search, space, wl, "edp", obj.Budgets(), evaluations=500, pop_size=8, seed=0
    )
    assert 0 < res.evaluations < 500
    assert res.best is not None and res.stopped == "converged"
