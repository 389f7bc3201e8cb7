"""Baseline searches on the exact model: random sampling, NSGA-II and exhaustive enumeration.

All three take what the gradient search takes (``fn(problem, budget, *, seed, settings,
checkpoint, progress)``, see ``dse.methods``): the same :class:`~dse.problem.Problem` and
:class:`~dse.problem.SearchBudget`, and every design they report is evaluated by the exact
model. A design is drawn (or enumerated) as hardware values and bit widths; its per-layer
tiles and loop orders are then chosen by ``dse.mapper.map_design`` from the full power-of-two
candidate grid, and the mapped design is evaluated exactly (``dse.design.evaluate_population``)
and logged by a :class:`~dse.result.Recorder`.

Each method stops at whichever comes first of the evaluation budget (met exactly) and the
wall-time budget (checked before every batch; the clock starts when the method is called, so
it includes compilation). Designs are mapped in batches of a fixed size (the last one padded,
only the real designs recorded) so nothing recompiles. ``progress(done, total)`` is called
after each batch (``total`` is None without a count). They keep no checkpoints.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import numbers
import time
from collections.abc import Callable

import jax
import numpy as np

from hw.bounds import InputError
from hw.types import Workload
from hw.x64 import x64

from . import deadline, legal, mapper
from . import design as dz
from . import objective as obj
from .problem import Problem, SearchBudget
from .result import Recorder, SearchResult
from .space import HW_KEYS, Space

log = logging.getLogger(__name__)

DEFAULT_EVALUATIONS = 2048
"""Evaluation budget of random search and NSGA-II when no budget is given."""

MAX_EXHAUSTIVE_DESIGNS = 100_000
"""The most designs :func:`exhaustive_search` enumerates (a ResNet-18 maps ~65 designs/s)."""

Progress = Callable[[int, int | None], None]


def _positive_int(name: str, value, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RandomSettings:
    batch: int = 64  # designs mapped per jitted call

    def __post_init__(self):
        _positive_int("batch", self.batch)


@dataclasses.dataclass(frozen=True)
class NSGA2Settings:
    pop_size: int = 64  # NSGA-II population (and offspring per generation)
    batch: int = 64  # designs mapped per jitted call

    def __post_init__(self):
        _positive_int("pop_size", self.pop_size, 2)
        _positive_int("batch", self.batch)


@dataclasses.dataclass(frozen=True)
class ExhaustiveSettings:
    batch: int = 64  # designs mapped per jitted call
    max_designs: int = MAX_EXHAUSTIVE_DESIGNS  # a larger space is refused up front

    def __post_init__(self):
        _positive_int("batch", self.batch)
        _positive_int("max_designs", self.max_designs)


@functools.partial(jax.jit, static_argnames=("objective", "step"))
def _map_population(base, workload: Workload, designs: dz.Design, objective, budgets, step=None):
    """Full-grid mapping of every design of a population (leading axis ``B``)."""
    return jax.vmap(lambda d: mapper.map_design(base, workload, d, objective, budgets, step=step))(
        designs
    )


def _head(tree, n: int):
    return jax.tree_util.tree_map(lambda x: x[:n], tree)


def _pad(genes: np.ndarray, batch: int) -> np.ndarray:
    """Rows of ``genes`` repeated from the last one up to ``batch`` rows."""
    extra = np.repeat(genes[-1:], batch - genes.shape[0], axis=0)
    return np.concatenate([genes, extra])


class _Run:
    """What the three searches share: the problem, the budget, the mapper and the recorder."""

    def __init__(self, method, problem, budget, settings, kind, checkpoint, started):
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a dse.Problem, got {type(problem).__name__}")
        if not isinstance(budget, SearchBudget):
            raise ValueError(f"budget must be a dse.SearchBudget, got {type(budget).__name__}")
        if not isinstance(settings, kind):
            raise ValueError(f"settings must be {kind.__name__}, got {type(settings).__name__}")
        if checkpoint is not None:
            raise InputError(f"checkpoint: the {method} search keeps no checkpoints; drop it")
        self.method, self.problem, self.budget = method, problem, budget
        self.space, self.workload = problem.space, problem.workload
        self.batch = settings.batch
        self.base = problem.base
        self.recorder = Recorder(
            problem.space, problem.workload, problem.objective, problem.budgets, started
        )
        self.stopped: str | None = None  # the budget that ran out, once one has
        self.deadline = None if budget.time_s is None else started + budget.time_s

    def remaining(self) -> int:
        """Evaluations still allowed: 0 once a budget is spent, ``sys.maxsize`` without an
        evaluation budget."""
        rec = self.recorder
        if self.stopped is None:
            self.stopped = self.budget.exhausted(rec.evaluations, rec.elapsed())
        return 0 if self.stopped is not None else self.budget.left(rec.evaluations)

    def measure(self, designs: dz.Design, n: int) -> tuple[dz.Design, dict] | None:
        """Map and exactly evaluate the first ``n`` designs of a full batch and record them;
        None when the time budget ran out first (compilation included)."""
        p = self.problem
        try:
            mapped = deadline.call(
                _map_population,
                self.base,
                self.workload,
                designs,
                p.objective,
                p.budgets.traced(),  # traced: a new limit reuses the compilation
                p.llm,
                deadline=self.deadline,
            )
            metrics = deadline.call(dz.evaluate_problem, p, mapped, deadline=self.deadline)
        except deadline.OutOfTime:
            self.stopped = "time"
            return None
        mapped, metrics = _head((mapped, metrics), n)
        self.recorder.add(mapped, metrics)
        return mapped, metrics

    def measure_genes(self, genes: np.ndarray) -> dict | None:
        """Decode, map, evaluate and record integer genes (any count), batch by batch, each
        after a budget check; None when a budget ran out before all were measured."""
        parts = []
        for start in range(0, genes.shape[0], self.batch):
            chunk = genes[start : start + self.batch]
            if self.remaining() < chunk.shape[0]:
                return None
            designs = legal.from_indices(self.space, self.workload, _pad(chunk, self.batch))
            measured = self.measure(designs, chunk.shape[0])
            if measured is None:
                return None
            parts.append(measured[1])
        return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}

    def result(self, seed: int) -> SearchResult:
        return self.recorder.result(self.method, seed, self.budget, self.stopped or "converged")


def _default(budget: SearchBudget | None) -> SearchBudget:
    """The budget in force: ``DEFAULT_EVALUATIONS`` when none bounds the search."""
    if budget is None or budget.unbounded:
        return SearchBudget(evaluations=DEFAULT_EVALUATIONS)
    return budget


@x64
def random_search(
    problem: Problem,
    budget: SearchBudget | None = None,
    *,
    seed: int = 0,
    settings: RandomSettings | None = None,
    checkpoint=None,
    progress: Progress | None = None,
) -> SearchResult:
    """Designs drawn uniformly from the space (``legal.sample``, batch ``i`` from
    ``fold_in(PRNGKey(seed), i)``), each mapped on the full grid and evaluated exactly."""
    started = time.perf_counter()
    settings = RandomSettings() if settings is None else settings
    budget = _default(budget)
    run = _Run("random", problem, budget, settings, RandomSettings, checkpoint, started)
    root = jax.random.PRNGKey(seed)
    step, batch = 0, settings.batch
    while (left := run.remaining()) > 0:
        designs = legal.sample(run.space, run.workload, jax.random.fold_in(root, step), batch)
        run.measure(designs, min(left, batch))
        step += 1
        if progress:
            progress(run.recorder.evaluations, budget.evaluations)
    return run.result(seed)


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


def _nsga2(space: Space, workload: Workload, budgets: obj.Budgets, settings, seed: int):
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
        pop_size=settings.pop_size,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    return problem, algorithm, sizes


@x64
def nsga2_search(
    problem: Problem,
    budget: SearchBudget | None = None,
    *,
    seed: int = 0,
    settings: NSGA2Settings | None = None,
    checkpoint=None,
    progress: Progress | None = None,
) -> SearchResult:
    """NSGA-II (pymoo, seeded) over integer genes decoded by ``legal.from_indices``; each
    offspring is mapped on the full grid and evaluated exactly. It minimizes
    :func:`nsga2_objectives` under :func:`nsga2_constraints`; the reported best is the best
    feasible design under the objective among all evaluated."""
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    started = time.perf_counter()
    settings = NSGA2Settings() if settings is None else settings
    budget = _default(budget)
    run = _Run("nsga2", problem, budget, settings, NSGA2Settings, checkpoint, started)
    moo, algorithm, sizes = _nsga2(run.space, run.workload, problem.budgets, settings, seed)
    while (left := run.remaining()) > 0:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:  # every offspring is a duplicate: the space is spent
            break
        pop = pop[: min(left, len(pop))]
        genes = np.clip(np.rint(pop.get("X")).astype(np.int64), 0, sizes - 1)
        metrics = run.measure_genes(genes)
        if metrics is None:
            break
        fitness = StaticProblem(
            moo,
            F=nsga2_objectives(metrics, problem.objective),
            G=nsga2_constraints(metrics, problem.budgets),
        )
        Evaluator().eval(fitness, pop)
        algorithm.tell(infills=pop)
        if progress:
            progress(run.recorder.evaluations, budget.evaluations)
    return run.result(seed)


def exhaustive_gene_sizes(space: Space, workload: Workload) -> list[int]:
    """Choices per gene of ``legal.from_indices`` that change the design: a vector-only
    layer's weight width is fixed (``legal.snap_design`` gives it the narrowest), so its gene
    has one choice, as have both width genes of a layer of ``space.fixed_bits``."""
    sizes = legal.gene_sizes(space, workload)
    if space.per_layer_bits:
        vector = np.flatnonzero(np.asarray(workload.gemm_count) <= 0)
        for i in vector:
            sizes[len(HW_KEYS) + int(i)] = 1
        for i, _, _ in space.fixed_bits:  # the model fixes both widths of these layers
            sizes[len(HW_KEYS) + i] = sizes[len(HW_KEYS) + workload.num_layers + i] = 1
    return sizes


def exhaustive_size(space: Space, workload: Workload) -> tuple[int, int]:
    """``(hardware points, bit-width assignments)``: the designs exhaustive search maps are
    their product. Hardware points count ``HW_KEYS``; assignments are the uniform
    ``(w_bits, a_bits)`` pairs, or with ``per_layer_bits`` every per-layer combination."""
    sizes = exhaustive_gene_sizes(space, workload)
    return math.prod(sizes[: len(HW_KEYS)]), math.prod(sizes[len(HW_KEYS) :])


@x64
def exhaustive_search(
    problem: Problem,
    budget: SearchBudget | None = None,
    *,
    seed: int = 0,
    settings: ExhaustiveSettings | None = None,
    checkpoint=None,
    progress: Progress | None = None,
) -> SearchResult:
    """Every hardware point times every bit-width assignment (:func:`exhaustive_size`), in a
    fixed order, each mapped by ``dse.mapper`` on the full power-of-two tile grid.

    Exact means: exhaustive over hardware values and bit widths; each layer's tiles and loop
    order are those ``dse.mapper.map_design`` picks from the full grid (no mapping is left to
    chance). A space of more than ``settings.max_designs`` designs raises ``ValueError`` up
    front; a run cut short by its budget logs a warning and reports the designs it reached.
    ``seed`` is only recorded.
    """
    started = time.perf_counter()
    settings = ExhaustiveSettings() if settings is None else settings
    budget = SearchBudget() if budget is None else budget
    run = _Run("exhaustive", problem, budget, settings, ExhaustiveSettings, checkpoint, started)
    hardware, widths = exhaustive_size(problem.space, problem.workload)
    total = hardware * widths
    if total > settings.max_designs:
        raise InputError(
            f"space too large for exhaustive search: {hardware} hardware points x {widths} "
            f"bit-width assignments = {total} designs; at most {settings.max_designs}"
        )
    sizes = exhaustive_gene_sizes(problem.space, problem.workload)
    done, batch = 0, settings.batch
    while done < total and (left := run.remaining()) > 0:
        flat = np.arange(done, min(done + batch, total, done + left))
        genes = np.stack(np.unravel_index(flat, sizes), axis=-1)
        run.measure_genes(genes)
        done += flat.size
        if progress:
            progress(done, total)
    if done < total:
        log.warning("exhaustive search stopped by its budget after %d of %d designs", done, total)
    return run.result(seed)
