"""Compiled functions are keyed on shapes, never on values: a new budget, accuracy floor,
seed or design runs the programs already compiled (compilations counted through JAX's
monitoring events, one per backend compilation, with the function's name)."""

import contextlib

import jax
import numpy as np
import pytest

from dse import gradient
from dse import objective as obj
from dse.accuracy import AccuracyModel
from dse.problem import Problem, SearchBudget
from dse.space import Space
from hw import layers
from npu_dse.simulate import resolve_design, simulate

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch
SPACE = {"rows": [8, 16], "cols": [8, 16], "dataflow": ["ws"], "sram_kib": [64, 256]}
SPACE |= {"w_bits": [4, 8], "a_bits": [8]}
SETTINGS = gradient.GradientSettings(
    starts=4, steps=4, legalize_every=2, polish_top=2, polish_rounds=1
)
WORKLOAD = layers.workload(
    [layers.gemm("g0", m=64, k=128, n=64), layers.gemm("g1", m=32, k=64, n=128)]
)
SENSITIVITY = AccuracyModel(np.float64(0.95), np.array([2.0, 4.0]), np.array([1.0, 1.0]))


@pytest.fixture(scope="module", autouse=True)
def no_persistent_cache():
    """The run's shared compilation cache (root conftest) off here: a program another module
    compiled would be loaded from it, and loading is not a backend compilation."""
    from jax._src import compilation_cache

    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    yield
    jax.config.update("jax_enable_compilation_cache", before)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def compiles():
    """``with compiles() as names:`` collects the names of the functions compiled inside."""
    active: list[list[str]] = []

    def listener(event, duration, **kw):
        if event == BACKEND_COMPILE and active:
            active[-1].append(kw.get("fun_name", "?"))

    jax.monitoring.register_event_duration_secs_listener(listener)

    @contextlib.contextmanager
    def count():
        active.append([])
        try:
            yield active[-1]
        finally:
            active.pop()

    yield count
    jax.monitoring.unregister_event_duration_listener(listener)


def problem(budgets: obj.Budgets) -> Problem:
    return Problem(Space.from_dict(SPACE), WORKLOAD, "edp", budgets, SENSITIVITY)


def test_a_new_budget_floor_or_seed_does_not_recompile_the_search(compiles):
    first = obj.Budgets(max_latency_s=1e-4, max_power_w=2.0, max_area_mm2=1.0, min_accuracy=0.8)
    with compiles() as names:
        gradient.run(problem(first), SearchBudget(), seed=0, settings=SETTINGS)
    assert names, "the first search compiles"  # the counter sees compilations
    other = obj.Budgets(max_latency_s=3e-6, max_power_w=0.5, max_area_mm2=0.2, min_accuracy=0.9)
    with compiles() as names:
        res = gradient.run(problem(other), SearchBudget(), seed=7, settings=SETTINGS)
    assert names == []
    assert res.evaluations > 0


def test_a_new_design_or_layer_names_do_not_recompile_simulate(compiles):
    simulate(WORKLOAD, resolve_design(preset="scalesim-32x32"))
    overrides = {"rows": 16, "cols": 64, "sram_kib": 512, "clock_mhz": 800, "dram_bw_gbps": 8}
    other = resolve_design(preset="scalesim-32x32", overrides=overrides)  # named "custom"
    renamed = layers.workload(
        [layers.gemm("a", m=64, k=128, n=64), layers.gemm("b", m=32, k=64, n=128)]
    )
    with compiles() as names:
        sim = simulate(renamed, other)
    assert names == []
    assert int(sim.config.rows) == 16 and sim.config.name == "custom"
    assert [r["name"] for r in sim.to_dict()["layers"]] == ["a", "b"]
