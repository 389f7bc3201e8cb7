"""The gradient search (dse.gradient) and the relaxed loss it descends (dse.relax).

One search problem is compiled once per module (the search caches its jitted functions per
problem object) and reused by every test of it. A search that meets no budget is run through
the command line (tests/test_cli_search.py).
"""

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from dse import baselines, gradient, relax
from dse import design as dz
from dse import objective as obj
from dse.problem import Problem, SearchBudget
from dse.result import METRICS
from dse.space import Space
from hw import cost, layers
from hw.arith import Arith
from hw.x64 import x64, x64_scope

REPO = Path(__file__).resolve().parents[1]
SPACE = {
    "rows": [8, 16, 32],
    "cols": [8, 16],
    "dataflow": ["os", "ws"],
    "sram_kib": [64, 256],
    "w_bits": [4, 8],
    "a_bits": [8],
}
# The best design without budgets has 0.103 mm^2, so the area budget binds.
BUDGETS = obj.Budgets(max_area_mm2=0.09)
SETTINGS = gradient.GradientSettings(starts=8, steps=40, legalize_every=10, polish_top=4)


def tiny_workload():
    return layers.workload(
        [
            layers.gemm("g", m=64, k=128, n=64),
            layers.conv2d(
                "c", ifmap_h=8, ifmap_w=8, channels=16, num_filters=32, filter_h=3, filter_w=3
            ),
        ]
    )


def make_problem(budgets: obj.Budgets = BUDGETS) -> Problem:
    return Problem(Space.from_dict(SPACE), tiny_workload(), "edp", budgets)


# The search of make_problem() with SETTINGS, run in a fresh interpreter.
SHARDED = """
import json, sys
import jax
sys.path.insert(0, "tests")
from test_gradient import SETTINGS, make_problem
from dse import gradient
res = gradient.run(make_problem(), seed=0, settings=SETTINGS)
print(json.dumps({"devices": len(jax.devices()), "evaluations": res.evaluations,
                  "best": res.best_metrics}))
"""


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """The search of ``problem`` on 8 host devices, in a subprocess started with the module's
    first test so that it runs beside the compilations of this one; yields the process and
    the paths of its stdout and stderr."""
    root = tmp_path_factory.mktemp("sharded")
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8",
    )
    with open(root / "out", "w") as out, open(root / "err", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SHARDED], cwd=REPO, env=env, stdout=out, stderr=err
        )
    yield proc, root / "out", root / "err"
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def problem(sharded):
    return make_problem()


@pytest.fixture(scope="module")
def result(problem):
    return gradient.run(problem, seed=0, settings=SETTINGS)


def row_metrics(res):
    return [[row[k] for k in (*METRICS, "feasible")] for row in res.rows]


# ---- the relaxed loss ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smooth_fns(problem):
    def loss_grad(params, dataflow, t):
        return jax.value_and_grad(lambda p: relax.loss(problem, p, dataflow, Arith.smooth(t)))(
            params
        )

    return {
        # traced in the model's 64-bit arithmetic, as dse.gradient.run does
        "loss_grad": x64(jax.jit(jax.vmap(loss_grad, in_axes=(0, 0, None)))),
        "metrics": x64(
            jax.jit(lambda p, df, t: relax.smooth_metrics(problem, p, df, Arith.smooth(t)))
        ),
    }


def stack(params: list) -> relax.Params:
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *params)


@pytest.mark.slow
def test_loss_and_gradients_are_finite_in_the_box(problem, smooth_fns):
    lo, hi = relax.bounds(problem)
    rng = np.random.default_rng(0)

    def mixed_corner():
        return jax.tree_util.tree_map(
            lambda a, b: np.where(rng.random(np.shape(a)) < 0.5, a, b), lo, hi
        )

    inside = relax.init(problem, jax.random.key(1), 6)
    points = [jax.tree_util.tree_map(lambda x, i=i: x[i], inside) for i in range(6)]
    points += [lo, hi] + [mixed_corner() for _ in range(8)]
    params = stack(points)
    n = len(points)
    for dataflow in (0, 1, 2):
        for t in (0.3, 0.03, 0.003):
            value, grad = smooth_fns["loss_grad"](params, np.full(n, dataflow), t)
            assert np.isfinite(np.asarray(value)).all(), (dataflow, t)
            for path, g in jax.tree_util.tree_leaves_with_path(grad):
                assert np.isfinite(np.asarray(g)).all(), (dataflow, t, path)
    # the box is a box: projection is idempotent and keeps the corners
    again = relax.project(relax.project(params, lo, hi), lo, hi)
    for a, b in zip(
        jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dataflow", [0, 1, 2])
@pytest.mark.slow
def test_smooth_metrics_tend_to_the_exact_ones(problem, smooth_fns, dataflow):
    """A legal design with one-hot loop orders: the smooth model at a low temperature is
    within a few per cent of the exact one."""
    space, wl, base = problem.space, problem.workload, problem.base
    d = dz.base_design(space, wl)
    d = dataclasses.replace(
        d,
        rows=np.float64(16),
        cols=np.float64(8),
        dataflow=np.int64(dataflow),
        sram_kib=np.float64(256),
        w_bits=np.array([4.0, 8.0]),
        a_bits=np.array([8.0, 8.0]),
    )
    d = dataclasses.replace(d, mapping=cost.default_mapping(dz.to_config(base, d, wl), wl))
    exact = dz.metrics(dz.evaluate(base, wl, d))
    assert bool(exact["fits"])
    tiles = np.stack(
        [np.asarray(t, float) for t in (d.mapping.tile_m, d.mapping.tile_k, d.mapping.tile_n)], -1
    )
    params = relax.Params(
        hw_log2={k: np.log2(np.asarray(getattr(d, k), float)) for k in relax.CONTINUOUS_KEYS},
        tiles_log2=np.log2(tiles),
        order_logits=40.0 * np.eye(3)[np.asarray(d.mapping.loop_order)],
        w_bits=np.asarray(d.w_bits),
        a_bits=np.asarray(d.a_bits),
    )
    errors = {}
    for t in (0.3, 1e-3):
        m, fit_pen = smooth_fns["metrics"](params, dataflow, t)
        errors[t] = {k: abs(float(m[k]) / float(exact[k]) - 1) for k in METRICS}
    assert max(errors[1e-3].values()) < 0.03, errors
    assert sum(errors[1e-3].values()) <= sum(errors[0.3].values()), errors
    assert float(fit_pen) == 0.0  # the tiles fit


# ---- the search ---------------------------------------------------------------------------


def test_same_seed_same_search(problem, result):
    again = gradient.run(problem, seed=0, settings=SETTINGS)
    assert again.best_metrics == result.best_metrics
    assert row_metrics(again) == row_metrics(result)
    assert again.evaluations == result.evaluations == len(result.rows)
    assert dz.describe(problem.space, again.best, problem.workload) == dz.describe(
        problem.space, result.best, problem.workload
    )
    assert result.method == "gradient" and result.seed == 0 and result.objective == "edp"


def test_best_is_feasible_and_exact(problem, result):
    assert result.best is not None and result.closest_miss is None
    m = dz.evaluate_population(problem.base, problem.workload, dz.stack([result.best]))
    for k in METRICS:
        assert float(m[k][0]) == pytest.approx(result.best_metrics[k], rel=1e-12)
    assert result.best_metrics["area_mm2"] <= BUDGETS.max_area_mm2
    feasible = [row["edp_js"] for row in result.rows if row["feasible"]]
    assert result.best_metrics["edp_js"] == min(feasible)
    assert [t[1] for t in result.trace] == sorted(t[1] for t in result.trace)


def test_near_the_exhaustive_optimum(problem, result):
    exhaustive = baselines.exhaustive_search(
        problem, settings=baselines.ExhaustiveSettings(batch=32)
    )
    assert exhaustive.evaluations == 96  # 24 hardware points x 2 x 2 per-layer weight widths
    best = exhaustive.best_metrics["edp_js"]
    assert result.best_metrics["edp_js"] <= 1.02 * best


def test_evaluation_budget_stops_early(problem, result):
    calls = []
    res = gradient.run(
        problem,
        SearchBudget(evaluations=10),
        settings=SETTINGS,
        progress=lambda *a: calls.append(a),
    )
    # the first legalization (8 starts) and 2 of the 4 remapped best designs
    assert calls == [(1, SETTINGS.chunks)]
    assert res.evaluations == len(res.rows) == 10
    assert res.stopped == "evaluations" and res.budget == SearchBudget(evaluations=10)
    assert result.stopped == "converged" and result.budget == SearchBudget()


@pytest.mark.parametrize("evaluations", [3, 8, 13, 30])
def test_evaluation_budget_is_never_exceeded(problem, result, evaluations):
    res = gradient.run(problem, SearchBudget(evaluations=evaluations), settings=SETTINGS)
    assert res.evaluations == len(res.rows) == min(evaluations, result.evaluations)
    # the same search as without a budget, up to where it was cut
    assert row_metrics(res) == row_metrics(result)[:evaluations]


@pytest.mark.slow
def test_time_budget_stops_the_search(problem, result):
    res = gradient.run(problem, SearchBudget(time_s=1e-6), settings=SETTINGS)
    assert res.evaluations == 0 and res.best is None and res.stopped == "time"
    long = dataclasses.replace(SETTINGS, steps=4000)
    gradient.run(problem, SearchBudget(evaluations=9), settings=long)  # compiles all
    res = gradient.run(problem, SearchBudget(time_s=1.0), settings=long)
    assert res.stopped == "time"
    assert 1.0 <= res.wall_s < 2.0  # the overrun is one step or one exact batch
    assert res.evaluations > 0 and res.best is not None


def test_no_recompilation_for_a_new_seed_budget_or_equal_problem(problem, result):
    fns = gradient._compiled(problem, SETTINGS)
    assert gradient._compiled(make_problem(), SETTINGS) is fns
    sizes = fns["step"]._cache_size(), fns["legalize"][False]._cache_size()
    gradient.run(make_problem(), SearchBudget(evaluations=30), seed=5, settings=SETTINGS)
    assert (fns["step"]._cache_size(), fns["legalize"][False]._cache_size()) == sizes


class Stop(KeyboardInterrupt):
    pass


def interrupt_after(chunk: int, calls: list):
    def progress(done, total):
        calls.append((done, total))
        if done == chunk:
            raise Stop

    return progress


def test_interrupted_search_resumes_to_the_same_answer(problem, result, tmp_path):
    first = []
    with pytest.raises(Stop):
        gradient.run(
            problem, settings=SETTINGS, checkpoint=tmp_path, progress=interrupt_after(2, first)
        )
    assert first == [(1, 4), (2, 4)]
    assert (tmp_path / gradient.CHECKPOINT_FILE).is_file()
    second = []
    resumed = gradient.run(
        problem, settings=SETTINGS, checkpoint=tmp_path, progress=lambda *a: second.append(a)
    )
    assert second == [(3, 4), (4, 4)]
    assert resumed.best_metrics == result.best_metrics
    assert resumed.evaluations == result.evaluations
    assert row_metrics(resumed) == row_metrics(result)


def test_checkpoint_of_another_search_is_refused(problem, tmp_path):
    with pytest.raises(Stop):
        gradient.run(
            problem, settings=SETTINGS, checkpoint=tmp_path, progress=interrupt_after(1, [])
        )
    # (the check comes before anything is compiled for the other problem)
    other = make_problem(obj.Budgets(max_power_w=1.0))
    with pytest.raises(ValueError, match="belongs to a different search"):
        gradient.run(other, settings=SETTINGS, checkpoint=tmp_path)
    with pytest.raises(ValueError, match="belongs to a different search"):
        gradient.run(problem, seed=1, settings=SETTINGS, checkpoint=tmp_path)


def _truncated(tmp_path):
    with pytest.raises(Stop):
        gradient.run(
            make_problem(), settings=SETTINGS, checkpoint=tmp_path, progress=interrupt_after(1, [])
        )
    data = (tmp_path / gradient.CHECKPOINT_FILE).read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "content",
    [b"", b"PK\x03\x04 not really a zip", pickle.dumps({"chunk": 1}), "truncated"],
    ids=["empty", "corrupt", "pickle", "truncated"],
)
def test_unreadable_checkpoint_is_a_one_line_error(problem, tmp_path, content):
    if content == "truncated":
        content = _truncated(tmp_path)
    (tmp_path / gradient.CHECKPOINT_FILE).write_bytes(content)
    with pytest.raises(ValueError, match="checkpoint folder") as err:
        gradient.run(problem, settings=SETTINGS, checkpoint=tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_sharded_search_equals_one_device(result, sharded):
    """The population split over 8 host devices finds the same designs as in this process
    (one device, unless XLA_FLAGS says otherwise)."""
    proc, out, err = sharded
    proc.wait(timeout=300)
    assert proc.returncode == 0, err.read_text()[-3000:]
    doc = json.loads(out.read_text().strip().splitlines()[-1])
    assert doc["devices"] == 8
    assert doc["evaluations"] == result.evaluations
    assert doc["best"].keys() == result.best_metrics.keys()
    for k, v in result.best_metrics.items():
        assert doc["best"][k] == pytest.approx(v, rel=1e-9), k


def test_a_step_longer_than_the_time_budget_is_given_up(monkeypatch):
    """A first step that outlives the budget (as a long compilation does): the search returns
    at the deadline with what it has (nothing here) while that step is still running."""
    import threading

    from dse import deadline, methods

    release = threading.Event()
    build = gradient._build

    def slow_build(problem, settings):
        fns = build(problem, settings)
        return {**fns, "step": lambda *a: (release.wait(), fns["step"](*a))[1]}

    monkeypatch.setattr(gradient, "_build", slow_build)
    wl = layers.workload([layers.gemm("odd", m=97, k=131, n=61)])  # not in the cache
    problem = Problem(Space.from_dict({"rows": [8, 16]}), wl, "edp")
    # Everything before the first step is built and run once before the clock starts, so that
    # the first step, not a slow build on a loaded machine, meets the deadline.
    settings = gradient.GradientSettings()
    n, _ = gradient.population_split(settings.starts)
    with x64_scope():
        fns = gradient._compiled(problem, settings)
        fns["init_opt"](relax.init(problem, jax.random.key(11), n))
    try:
        result = methods.search(problem, "gradient", SearchBudget(time_s=5.0), seed=11)
        assert deadline.pending()  # the search did not wait for the step
    finally:
        release.set()
        gradient._CACHE.clear()
    assert result.stopped == "time" and result.evaluations == 0 and result.best is None


def test_polish_carries_the_width_moves_that_helped_alone_further(problem):
    # Per-layer widths of a two-layer network: layer 0's w 8->4 and layer 1's a 8->4 each
    # beat the anchor alone (a worse move and an infeasible one are left out). Further: both
    # at once, and the best (layer 1's a) one more step down, to 2; nothing else.
    space = dataclasses.replace(problem.space, a_bits=(2.0, 4.0, 8.0))
    p = dataclasses.replace(problem, space=space)
    anchor = dz.base_design(space, p.workload)
    anchor = dataclasses.replace(anchor, w_bits=np.array([8.0, 8.0]), a_bits=np.array([8.0, 8.0]))

    def moved(**bits):
        return dataclasses.replace(anchor, **{k: np.array(v) for k, v in bits.items()})

    picks = [
        moved(w_bits=[4.0, 8.0]),
        moved(a_bits=[8.0, 4.0]),
        moved(w_bits=[8.0, 4.0]),
        moved(a_bits=[4.0, 8.0]),
    ]
    rows = [
        {"feasible": True, "edp_js": 0.8},
        {"feasible": True, "edp_js": 0.7},
        {"feasible": True, "edp_js": 1.2},
        {"feasible": False, "edp_js": 0.5},
    ]
    both, further = gradient._merged(p, anchor, picks, rows, 1.0)
    widths = [
        (np.asarray(d.w_bits).tolist(), np.asarray(d.a_bits).tolist()) for d in (both, further)
    ]
    assert widths == [([4.0, 8.0], [8.0, 4.0]), ([8.0, 8.0], [8.0, 2.0])]
    assert gradient._merged(p, anchor, picks[:1], rows[:1], 1.0) == []  # w: no step beyond 4
