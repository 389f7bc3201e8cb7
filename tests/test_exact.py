"""The exact search (``dse.exact``) and its Pareto programme (``dse.paretodp``).

On a 16-hardware-point space (2 x 2 widths per layer: 64 designs) and a two-layer workload,
the exact optimum is never worse than exhaustive search's (whose mapper weighs energy against
latency to first order: 5.6 % worse in EDP here), equal to it where exhaustive search picks
each layer's mapping optimally too (latency: a sum of per-layer latencies), and meets every
budget; the programme agrees with brute force on random option sets.
"""

import contextlib
import io
import itertools
import json
import logging

import numpy as np
import pytest

from dse import baselines, exact, paretodp
from dse import objective as obj
from dse.accuracy import AccuracyModel
from dse.problem import Problem, SearchBudget
from dse.space import Space
from hw import layers
from hw.bounds import InputError
from npu_dse.cli import main

# The exact search's mapping is exact and exhaustive search's map_design a first-order pick:
# on this space both give the same optimum to the last digit, so compare tightly.
RTOL = 1e-12
EXHAUSTIVE = baselines.ExhaustiveSettings(batch=32)  # test_baselines' batch: shared compilations


@pytest.fixture(scope="module")
def space():
    # 2 rows x 2 SRAM sizes x (2 x 2 multiplier widths) = 16 hardware points.
    return Space.from_dict(
        {
            "rows": [8, 16],
            "cols": [16],
            "dataflow": ["ws"],
            "sram_kib": [64, 256],
            "w_bits": [4, 8],
            "a_bits": [4, 8],
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
def accuracy():
    # Layer "c" loses 40 / 4^a of accuracy: a4 costs 0.156, a8 0.0006 (dse.accuracy).
    return AccuracyModel(np.float64(0.9), np.array([20.0, 5.0]), np.array([10.0, 40.0]))


@pytest.fixture(scope="module")
def free_rows(space, workload):
    """Every design of the space, mapped and evaluated exactly (exhaustive, no budgets)."""
    return baselines.exhaustive_search(Problem(space, workload, "edp"), settings=EXHAUSTIVE).rows


def quantile(rows, key, q):
    return float(np.quantile([r[key] for r in rows], q))


def budget_cases(rows):
    """Budgets that bind: latency, power and accuracy; latency and power; power and area."""
    lat, pw, area = (
        lambda q, k=k: quantile(rows, k, q) for k in ("latency_s", "power_w", "area_mm2")
    )
    return {
        "latency+power+accuracy": obj.Budgets(
            max_latency_s=lat(0.7), max_power_w=pw(0.7), min_accuracy=0.8
        ),
        "latency+power": obj.Budgets(max_latency_s=lat(0.3), max_power_w=pw(0.5)),
        "power+area": obj.Budgets(max_power_w=pw(0.2), max_area_mm2=area(0.6)),
    }


@pytest.mark.parametrize("objective", ["latency", pytest.param("edp", marks=pytest.mark.slow)])
def test_free_optimum_against_exhaustive(space, workload, caplog, objective):
    problem = Problem(space, workload, objective)
    with caplog.at_level(logging.WARNING, logger="dse.exact"):
        ex = exact.exact_search(problem)
    assert not caplog.records  # the programme's totals are the exact model's
    ref = baselines.exhaustive_search(problem, settings=EXHAUSTIVE)
    key = obj.OBJECTIVES[objective]
    assert ex.stopped == "converged"
    assert ex.best_metrics[key] <= ref.best_metrics[key] * (1 + RTOL)
    if objective == "latency":
        # A sum of per-layer latencies: exhaustive search's mapper picks each layer's
        # fastest tiling too, so both enumerate the same optimal mappings.
        assert ex.best_metrics[key] == pytest.approx(ref.best_metrics[key], rel=RTOL)


@pytest.mark.parametrize(
    "case",
    [
        "latency+power+accuracy",
        pytest.param("latency+power", marks=pytest.mark.slow),
        pytest.param("power+area", marks=pytest.mark.slow),
    ],
)
def test_budgets_met_and_never_worse_than_exhaustive(space, workload, accuracy, free_rows, case):
    budgets = budget_cases(free_rows)[case]
    problem = Problem(space, workload, "energy", budgets, accuracy=accuracy)
    ex = exact.exact_search(problem)
    ref = baselines.exhaustive_search(problem, settings=EXHAUSTIVE)
    assert ref.best is not None  # the budgets can be met
    m = ex.best_metrics
    assert bool(obj.feasible(dict(m, fits=bool(m["fits"])), budgets))
    assert not obj.worst_miss(m, budgets)
    for metric, (limit, sense) in budgets.limits().items():
        assert sense * (m[metric] - limit) <= 0, metric
    assert m["energy_j"] <= ref.best_metrics["energy_j"] * (1 + RTOL)


@pytest.mark.slow
def test_tight_power_budget(space, workload, free_rows):
    # Only the 5 % least power-hungry designs meet it: slow ones among them.
    budgets = obj.Budgets(max_power_w=quantile(free_rows, "power_w", 0.05))
    problem = Problem(space, workload, "edp", budgets)
    ex, ref = exact.exact_search(problem), baselines.exhaustive_search(problem, settings=EXHAUSTIVE)
    assert ex.best_metrics["power_w"] <= budgets.max_power_w
    assert ex.best_metrics["edp_js"] <= ref.best_metrics["edp_js"] * (1 + RTOL)


def test_refusal_line_names_the_size(workload):
    space = Space.from_dict(
        {"rows": {"min": 8, "max": 256, "pow2": True}, "w_bits": {"min": 2, "max": 16}}
    )
    problem = Problem(space, workload, "edp")
    with pytest.raises(InputError, match=r"^--method exact: the space has 90 hardware points"):
        exact.exact_search(problem, settings=exact.ExactSettings(max_hardware=89))
    assert exact.refusal(problem, exact.ExactSettings(max_hardware=90)) is None


def test_time_budget_stops_it(space, workload):
    result = exact.exact_search(Problem(space, workload, "edp"), SearchBudget(time_s=1e-9))
    assert result.stopped == "time" and result.best is None


def _brute(options, value, feasible):
    """The best feasible total over every combination of per-layer options."""
    best = np.inf
    for combo in itertools.product(*options):
        total = np.sum(combo, axis=0)
        if feasible(total[None])[0]:
            best = min(best, value(total[None])[0])
    return best


@pytest.mark.parametrize("seed", range(4))
def test_programme_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    options = [rng.integers(1, 9, size=(rng.integers(2, 6), 3)).astype(float) for _ in range(4)]
    limit = np.median([np.sum(c, axis=0) for c in itertools.product(*options)], axis=0)

    def feasible(t):  # budgets on the second and third coordinates
        return (t[:, 1] <= limit[1]) & (t[:, 2] <= limit[2])

    def value(t):
        return t[:, 0] * t[:, 1]

    totals, picks = paretodp.solve(options)
    chosen = np.stack(
        [np.sum([o[j] for o, j in zip(options, p, strict=True)], axis=0) for p in picks]
    )
    np.testing.assert_array_equal(chosen, totals)  # picks reproduce their totals
    ok = feasible(totals)
    found = value(totals[ok]).min() if ok.any() else np.inf
    assert found == _brute(options, value, feasible)
    every = np.array([np.sum(c, axis=0) for c in itertools.product(*options)])
    front = every[paretodp.front(every)]
    assert sorted(map(tuple, front)) == sorted(map(tuple, totals))


def test_front_keeps_one_of_equal_rows_and_drops_dominated():
    pts = np.array([[2.0, 2.0, 2.0], [1.0, 3.0, 2.0], [2.0, 2.0, 2.0], [2.0, 3.0, 2.0]])
    assert sorted(paretodp.front(pts).tolist()) == [0, 1]


def test_cli_refuses_a_space_too_large_in_one_line(tmp_path):
    space = {
        "rows": {"min": 8, "max": 256, "pow2": True},
        "cols": {"min": 8, "max": 256, "pow2": True},
        "dataflow": ["os", "ws", "is"],
        "sram_kib": {"min": 64, "max": 8192, "pow2": True},
        "w_bits": {"min": 2, "max": 16},
        "a_bits": {"min": 2, "max": 16},
    }
    wl = {"name": "g", "layers": [{"name": "g", "type": "gemm", "m": 64, "k": 64, "n": 64}]}
    (tmp_path / "space.json").write_text(json.dumps(space))
    (tmp_path / "wl.json").write_text(json.dumps(wl))
    args = [
        "search",
        "--workload",
        str(tmp_path / "wl.json"),
        "--space",
        str(tmp_path / "space.json"),
    ]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--method", "exact"])
    # 6 rows x 6 cols x 3 dataflows x 8 SRAM sizes x 15 x 15 widths = 194400 hardware points
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert "the space has 194400 hardware points" in err.getvalue()
