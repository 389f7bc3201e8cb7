"""The search methods behind one API (dse.methods): one signature, one registry."""

import inspect

import pytest

import dse
from dse import methods
from dse import objective as obj
from dse.problem import Problem, SearchBudget
from dse.space import Space
from hw import layers


def test_every_method_has_the_same_signature():
    params = {
        name: [
            (p.name, p.kind, p.default is inspect.Parameter.empty)
            for p in inspect.signature(fn).parameters.values()
        ]
        for name, fn in methods.METHODS.items()
    }
    first = params["gradient"]
    assert [p[0] for p in first] == [
        "problem",
        "budget",
        "seed",
        "settings",
        "checkpoint",
        "progress",
    ]
    assert all(p == first for p in params.values()), params
    assert set(methods.SETTINGS) == set(methods.METHODS)
    assert dse.METHODS is methods.METHODS and dse.search is methods.search


@pytest.fixture(scope="module")
def problem():
    space = Space.from_dict({"rows": [8, 16], "cols": [8, 16], "w_bits": [8], "a_bits": [8]})
    return Problem(
        space, layers.workload([layers.gemm("g", m=32, k=32, n=32)]), "edp", obj.Budgets()
    )


@pytest.mark.parametrize("method", ["exhaustive", "random", "nsga2"])
def test_search_by_name(problem, method):
    settings = methods.SETTINGS[method](batch=4)
    res = dse.search(problem, method, SearchBudget(evaluations=3), seed=2, settings=settings)
    assert res.method == method and res.seed == 2 and res.evaluations == 3
    assert res.budget == SearchBudget(evaluations=3) and res.stopped == "evaluations"


def test_unknown_method(problem):
    with pytest.raises(ValueError, match="method must be one of gradient, exhaustive"):
        dse.search(problem, "annealing")
