"""Baseline searches on the exact model: random sampling, NSGA-II and exhaustive enumeration.

All three search the same :class:`~dse.space.Space` under the same objective and budgets, and
every design they report is evaluated by the exact model. A design is drawn (or enumerated) as
hardware values and bit widths; its per-layer tiles and loop orders are then chosen by
``dse.mapper.map_design`` from the full power-of-two candidate grid, and the mapped design is
evaluated exactly (``dse.design.evaluate_population``) and logged by a
:class:`~dse.result.Recorder`.

Each method stops at whichever comes first of an evaluation budget (``evaluations``, met
exactly) and a wall-time budget (``time_budget_s``, checked between batches, or generations
of NSGA-II; the first always runs, so it includes compilation). Designs are mapped in batches
of a fixed size (the last one padded, only the real designs recorded) so nothing recompiles.
``progress(done, total)`` is called after each batch (``total`` is None without a count).
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import sys
from collections.abc import Callable

import jax
import numpy as np

from hw.types import Workload
from hw.x64 import x64

from . import design as dz
from . import legal, mapper
from . import objective as obj
from .result import Recorder, SearchResult
from .space import HW_KEYS, Space

log = logging.getLogger(__name__)

DEFAULT_EVALUATIONS = 2048
"""Evaluation budget of random search and NSGA-II when no budget is given."""

MAX_EXHAUSTIVE_DESIGNS = 100_000
"""The most designs :func:`exhaustive_search` enumerates (a ResNet-18 maps ~65 designs/s)."""

Progress = Callable[[int, int | None], None]


@functools.partial(jax.jit, static_argnames=("objective", "budgets"))
def _map_population(base, workload: Workload, designs: dz.Design, objective, budgets):
    """Full-grid mapping of every design of a population (leading axis ``B``)."""
    return jax.vmap(lambda d: mapper.map_design(base, workload, d, objective, budgets))(designs)


def _head(tree, n: int):
    return jax.tree_util.tree_map(lambda x: x[:n], tree)


def _pad(genes: np.ndarray, batch: int) -> np.ndarray:
    """Rows of ``genes`` repeated from the last one up to ``batch`` rows."""
    extra = np.repeat(genes[-1:], batch - genes.shape[0], axis=0)
    return np.concatenate([genes, extra])


class _Run:
    """What the three searches share: the budgets, the mapper and the recorder."""

    def __init__(
        self, space, workload, objective, budgets, evaluations, time_budget_s, batch, accuracy
    ):
        if objective not in obj.OBJECTIVES:
            raise ValueError(
                f"objective must be one of {', '.join(obj.OBJECTIVES)}, got {objective!r}"
            )
        budgets.check()
        if evaluations is not None and (
            isinstance(evaluations, bool)
            or not isinstance(evaluations, numbers.Integral)
            or evaluations < 1
        ):
            raise ValueError(f"evaluations must be a positive integer, got {evaluations!r}")
        if time_budget_s is not None and not time_budget_s > 0:
            raise ValueError(f"time_budget_s must be a positive number, got {time_budget_s!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        self.space, self.workload, self.batch = space, workload, batch
        self.objective, self.budgets = objective, budgets
        self.limit, self.time_budget_s = evaluations, time_budget_s
        self.base = space.base_config()
        self.accuracy = accuracy  # dse.accuracy.AccuracyModel or None
        self.recorder = Recorder(space, workload, objective, budgets)

    def remaining(self) -> int:
        """Evaluations still allowed: 0 once a budget is spent (the first batch always runs),
        ``sys.maxsize`` without an evaluation budget."""
        rec = self.recorder
        if rec.evaluations and self.time_budget_s and rec.elapsed() >= self.time_budget_s:
            return 0
        return sys.maxsize if self.limit is None else self.limit - rec.evaluations

    def measure(self, designs: dz.Design, n: int) -> tuple[dz.Design, dict]:
        """Map and exactly evaluate the first ``n`` designs of a full batch; record them."""
        mapped = _map_population(self.base, self.workload, designs, self.objective, self.budgets)
        mapped, metrics = _head(
            (
                mapped,
                dz.evaluate_population(self.base, self.workload, mapped, accuracy=self.accuracy),
            ),
            n,
        )
        self.recorder.add(mapped, metrics)
        return mapped, metrics

    def measure_genes(self, genes: np.ndarray) -> dict:
        """Decode, map, evaluate and record integer genes (any count), batch by batch."""
        parts = []
        for start in range(0, genes.shape[0], self.batch):
            chunk = genes[start : start + self.batch]
            designs = legal.from_indices(self.space, self.workload, _pad(chunk, self.batch))
            parts.append(self.measure(designs, chunk.shape[0])[1])
        return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


@x64
def random_search(
    space: Space,
    workload: Workload,
    objective: str,
    budgets: obj.Budgets,
    *,
    evaluations: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    batch: int = 64,
    progress: Progress | None = None,
    accuracy=None,
) -> SearchResult:
    """Designs drawn uniformly from the space (``legal.sample``, batch ``i`` from
    ``fold_in(PRNGKey(seed), i)``), each mapped on the full grid and evaluated exactly."""
    if evaluations is None and time_budget_s is None:
        evaluations = DEFAULT_EVALUATIONS
    run = _Run(space, workload, objective, budgets, evaluations, time_budget_s, batch, accuracy)
    root = jax.random.PRNGKey(seed)
    step = 0
    while (left := run.remaining()) > 0:
        designs = legal.sample(space, workload, jax.random.fold_in(root, step), batch)
        run.measure(designs, min(left, batch))
        step += 1
        if progress:
            progress(run.recorder.evaluations, evaluations)
    return run.recorder.result("random", seed)


def nsga2_objectives(metrics: dict, objective: str) -> np.ndarray:
    """NSGA-II's two minimized objectives, shape=(B, 2): ``(latency_s, energy_j)`` for
    ``edp`` and ``latency``, ``(energy_j, latency_s)`` for ``energy``."""
    pair = ("energy_j", "latency_s") if objective == "energy" else ("latency_s", "energy_j")
    return np.stack([np.asarray(metrics[k], dtype=np.float64) for k in pair], axis=-1)


def nsga2_constraints(metrics: dict, budgets: obj.Budgets) -> np.ndarray:
    """NSGA-II's constraints, ``<= 0`` when met, shape=(B, C): each budget's relative miss
    (``objective.misses``), then ``1`` where some layer's tiles do not fit (else ``0``)."""
    fits = np.asarray(metrics["fits"])
    cols = [np.asarray(v, dtype=np.float64) for v in obj.misses(metrics, budgets).values()]
    return np.stack([*cols, np.where(fits, 0.0, 1.0)], axis=-1)


def _nsga2(space: Space, workload: Workload, budgets: obj.Budgets, pop_size: int, seed: int):
    """A pymoo NSGA-II over integer genes (``legal.gene_sizes``), set up for ask/tell."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.core.termination import NoTermination
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    sizes = np.asarray(legal.gene_sizes(space, workload))
    problem = Problem(
        n_var=sizes.size,
        n_obj=2,
        n_ieq_constr=len(budgets.limits()) + 1,
        xl=np.zeros(sizes.size),
        xu=sizes - 1.0,
        vtype=int,
    )
    algorithm = NSGA2(
        pop_size=pop_size,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    return problem, algorithm, sizes


@x64
def nsga2_search(
    space: Space,
    workload: Workload,
    objective: str,
    budgets: obj.Budgets,
    *,
    evaluations: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    batch: int = 64,
    pop_size: int = 64,
    progress: Progress | None = None,
    accuracy=None,
) -> SearchResult:
    """NSGA-II (pymoo, seeded) over integer genes decoded by ``legal.from_indices``; each
    offspring is mapped on the full grid and evaluated exactly. It minimizes
    :func:`nsga2_objectives` under :func:`nsga2_constraints`; the reported best is the best
    feasible design under ``objective`` among all evaluated."""
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    if evaluations is None and time_budget_s is None:
        evaluations = DEFAULT_EVALUATIONS
    if isinstance(pop_size, bool) or not isinstance(pop_size, int) or pop_size < 2:
        raise ValueError(f"pop_size must be an integer of at least 2, got {pop_size!r}")
    run = _Run(space, workload, objective, budgets, evaluations, time_budget_s, batch, accuracy)
    problem, algorithm, sizes = _nsga2(space, workload, budgets, pop_size, seed)
    while (left := run.remaining()) > 0:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:  # every offspring is a duplicate: the space is spent
            break
        pop = pop[: min(left, len(pop))]
        genes = np.clip(np.rint(pop.get("X")).astype(np.int64), 0, sizes - 1)
        metrics = run.measure_genes(genes)
        fitness = StaticProblem(
            problem,
            F=nsga2_objectives(metrics, objective),
            G=nsga2_constraints(metrics, budgets),
        )
        Evaluator().eval(fitness, pop)
        algorithm.tell(infills=pop)
        if progress:
            progress(run.recorder.evaluations, evaluations)
    return run.recorder.result("nsga2", seed)


def exhaustive_gene_sizes(space: Space, workload: Workload) -> list[int]:
    """Choices per gene of ``legal.from_indices`` that change the design: a vector-only
    layer's weight width is fixed (``legal.snap_design`` gives it the narrowest), so its gene
    has one choice."""
    sizes = legal.gene_sizes(space, workload)
    if space.per_layer_bits:
        vector = np.flatnonzero(np.asarray(workload.gemm_count) <= 0)
        for i in vector:
            sizes[len(HW_KEYS) + int(i)] = 1
    return sizes


def exhaustive_size(space: Space, workload: Workload) -> tuple[int, int]:
    """``(hardware points, bit-width assignments)``: the designs exhaustive search maps are
    their product. Hardware points count ``HW_KEYS``; assignments are the uniform
    ``(w_bits, a_bits)`` pairs, or with ``per_layer_bits`` every per-layer combination."""
    sizes = exhaustive_gene_sizes(space, workload)
    return math.prod(sizes[: len(HW_KEYS)]), math.prod(sizes[len(HW_KEYS) :])


@x64
def exhaustive_search(
    space: Space,
    workload: Workload,
    objective: str,
    budgets: obj.Budgets,
    *,
    evaluations: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    batch: int = 64,
    progress: Progress | None = None,
    accuracy=None,
    max_designs: int = MAX_EXHAUSTIVE_DESIGNS,
) -> SearchResult:
    """Every hardware point times every bit-width assignment (:func:`exhaustive_size`), in a
    fixed order, each mapped by ``dse.mapper`` on the full power-of-two tile grid.

    Exact means: exhaustive over hardware values and bit widths; each layer's tiles and loop
    order are those ``dse.mapper.map_design`` picks from the full grid (no mapping is left to
    chance). A space of more than ``max_designs`` designs raises ``ValueError`` up front; a
    run cut short by ``evaluations`` or ``time_budget_s`` logs a warning and reports the
    designs it reached. ``seed`` is only recorded.
    """
    hardware, widths = exhaustive_size(space, workload)
    total = hardware * widths
    if total > max_designs:
        raise ValueError(
            f"space too large for exhaustive search: {hardware} hardware points x {widths} "
            f"bit-width assignments = {total} designs; at most {max_designs}"
        )
    run = _Run(space, workload, objective, budgets, evaluations, time_budget_s, batch, accuracy)
    sizes = exhaustive_gene_sizes(space, workload)
    done = 0
    while done < total and (left := run.remaining()) > 0:
        flat = np.arange(done, min(done + batch, total, done + left))
        genes = np.stack(np.unravel_index(flat, sizes), axis=-1)
        run.measure_genes(genes)
        done += flat.size
        if progress:
            progress(done, total)
    if done < total:
        log.warning("exhaustive search stopped by its budget after %d of %d designs", done, total)
    return run.recorder.result("exhaustive", seed)
