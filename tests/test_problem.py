"""Problem and SearchBudget (dse.problem): validated once, when built."""

import math

import numpy as np
import pytest

from dse import accuracy
from dse import objective as obj
from dse.problem import Problem, SearchBudget
from dse.space import Space
from hw import layers

SPACE = Space.from_dict({"rows": [8, 16]})
WL = layers.workload([layers.gemm("g", m=16, k=16, n=16)])


def test_a_valid_problem():
    p = Problem(SPACE, WL, "energy", obj.Budgets(max_power_w=1.0))
    assert float(p.base.clock_mhz) == float(SPACE.base_config().clock_mhz)
    assert Problem(SPACE, WL, "edp").budgets == obj.Budgets()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "area"}, "problem objective must be one of edp, energy, latency"),
        ({"space": {"rows": [8]}}, "problem space must be a dse.Space"),
        ({"workload": [1, 2]}, "problem workload must be an hw.types.Workload"),
        ({"budgets": {"max_power_w": 1}}, "problem budgets must be dse.Budgets"),
        ({"budgets": obj.Budgets(max_power_w=-1.0)}, "budget max_power_w must be a positive"),
        ({"budgets": obj.Budgets(min_accuracy=0.9)}, "min_accuracy needs an accuracy model"),
        ({"accuracy": 0.9}, "problem accuracy must be"),
    ],
)
def test_bad_problem_is_one_line_naming_the_field(kwargs, match):
    args = {"space": SPACE, "workload": WL, "objective": "edp", **kwargs}
    with pytest.raises(ValueError, match=match) as err:
        Problem(**args)
    assert "\n" not in str(err.value)


def test_accuracy_floor_with_a_model():
    model = accuracy.AccuracyModel(np.float64(0.9), np.zeros(1), np.zeros(1))
    p = Problem(SPACE, WL, "energy", obj.Budgets(min_accuracy=0.8), model)
    assert p.accuracy is model


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"evaluations": 0}, "budget evaluations must be a positive integer, got 0"),
        ({"evaluations": -3}, "budget evaluations"),
        ({"evaluations": 1.5}, "budget evaluations"),
        ({"evaluations": True}, "budget evaluations"),
        ({"time_s": 0.0}, "budget time_s must be a positive finite number"),
        ({"time_s": math.inf}, "budget time_s"),
        ({"time_s": math.nan}, "budget time_s"),
        ({"time_s": "5"}, "budget time_s"),
    ],
)
def test_bad_search_budget(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchBudget(**kwargs)


def test_search_budget_accounting():
    b = SearchBudget(evaluations=10, time_s=2.0)
    assert b.exhausted(9, 1.0) is None
    assert b.exhausted(10, 1.0) == "evaluations"
    assert b.exhausted(3, 2.0) == "time"
    assert b.left(7) == 3 and b.left(12) == 0
    assert SearchBudget().unbounded and SearchBudget().exhausted(10**9, 1e9) is None
