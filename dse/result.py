"""What every search method returns, and the log of exactly evaluated designs it keeps.

A :class:`Recorder` receives each batch of exactly evaluated designs (``add``), keeps the best
feasible one under the objective and, while none is feasible, the one closest to feasibility
(smallest worst budget miss), and logs one row per design for the CSV of every evaluated
design. Ties go to the earlier design, so a search is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from hw.types import Workload

from . import design as dz
from . import objective as obj
from .problem import SearchBudget
from .space import Space

METRICS = ("latency_s", "energy_j", "power_w", "area_mm2", "edp_js")
TOP_K = 16
STOPS = ("converged", "evaluations", "time")
"""Why a search ended (``SearchResult.stopped``)."""


@dataclasses.dataclass
class SearchResult:
    """The outcome of one search, the same for every method.

    ``best`` is the best feasible design (or None), ``best_metrics`` its exact metrics;
    ``closest`` and ``closest_miss`` describe the design nearest to feasibility when none was
    feasible (``closest_miss`` is ``(budget, relative miss)``). ``rows`` has one dict per
    exactly evaluated design (hardware, metrics, feasibility, evaluation index, time).
    ``budget`` is the :class:`~dse.problem.SearchBudget` in force, ``evaluations`` and
    ``wall_s`` what was spent, ``stopped`` why the search ended: ``"converged"`` (the method
    finished), ``"evaluations"`` or ``"time"`` (that budget ran out).
    """

    method: str
    seed: int
    objective: str
    best: dz.Design | None
    best_metrics: dict | None
    evaluations: int
    wall_s: float
    rows: list[dict]
    closest: dz.Design | None = None
    closest_metrics: dict | None = None
    closest_miss: tuple[str, float] | None = None
    trace: list[tuple[float, int, float]] = dataclasses.field(default_factory=list)
    """``(wall_s, evaluations, best objective so far)`` after each batch (best-so-far curves)."""
    top: list[tuple[dz.Design, dict]] = dataclasses.field(default_factory=list)
    """The ``TOP_K`` best distinct feasible designs with their metrics, best first (for
    re-checks that only execution can make, such as measured accuracy)."""
    budget: SearchBudget = SearchBudget()
    stopped: str = "converged"

    @property
    def spent_evaluations(self) -> int:
        return self.evaluations


class Recorder:
    """Accumulates exact evaluations; see the module docstring."""

    def __init__(
        self,
        space: Space,
        workload: Workload,
        objective: str,
        budgets: obj.Budgets,
        start: float | None = None,
    ):
        self.space, self.workload = space, workload
        self.objective, self.budgets = objective, budgets
        self.rows: list[dict] = []
        self.evaluations = 0
        self.best = self.best_metrics = None
        self.best_value = np.inf
        self.closest = self.closest_metrics = self.closest_miss = None
        self._closest_key = np.inf
        self.trace: list[tuple[float, int, float]] = []
        self.top: list[tuple[float, dz.Design, dict]] = []
        self.start = time.perf_counter() if start is None else start  # perf_counter() s

    def add(self, designs: dz.Design, metrics: dict, extra: dict | None = None) -> None:
        """Log a population of exactly evaluated designs (leading axis B) and their metrics
        (``extra``: more per-design columns, e.g. ``accuracy``)."""
        m = {k: np.asarray(v) for k, v in metrics.items()}
        if extra:
            m.update({k: np.asarray(v) for k, v in extra.items()})
        n = int(np.shape(m["latency_s"])[0])
        ok = np.asarray(obj.feasible(m, self.budgets))
        value = np.asarray(obj.objective(m, self.objective))
        miss = obj.misses(m, self.budgets)
        worst = np.max(np.stack([np.asarray(v) for v in miss.values()]), axis=0) if miss else 0
        worst = np.where(m["fits"], worst, np.inf) * np.ones(n)
        host = jax.tree_util.tree_map(np.asarray, designs)
        for i in range(n):
            row = {
                "evaluation": self.evaluations + i,
                "wall_s": round(time.perf_counter() - self.start, 4),
                "rows": int(host.rows[i]),
                "cols": int(host.cols[i]),
                "dataflow": int(host.dataflow[i]),
                "sram_kib": float(host.sram_kib[i]),
                "clock_mhz": float(host.clock_mhz[i]),
                "dram_bw_gbps": float(host.dram_bw_gbps[i]),
                "w_bits": float(np.max(host.w_bits[i])),
                "a_bits": float(np.max(host.a_bits[i])),
                "mean_w_bits": float(np.mean(host.w_bits[i])),
                "mean_a_bits": float(np.mean(host.a_bits[i])),
                **{k: float(m[k][i]) for k in m if k != "fits"},
                "fits": bool(m["fits"][i]),
                "feasible": bool(ok[i]),
            }
            self.rows.append(row)
        feas = np.flatnonzero(ok)
        self._keep_top(designs, m, value, feas)
        if feas.size:
            i = int(feas[np.argmin(value[feas])])
            if value[i] < self.best_value:
                self.best_value = float(value[i])
                self.best = dz.take(designs, i)
                self.best_metrics = {k: float(v[i]) for k, v in m.items()}
        if self.best is None and n:
            i = int(np.argmin(worst))
            if worst[i] < self._closest_key:
                self._closest_key = float(worst[i])
                self.closest = dz.take(designs, i)
                self.closest_metrics = {k: float(v[i]) for k, v in m.items()}
                self.closest_miss = obj.worst_miss(self.closest_metrics, self.budgets) or (
                    "fits",
                    float("inf"),
                )
        self.evaluations += n
        self.trace.append((self.elapsed(), self.evaluations, self.best_value))

    def _keep_top(self, designs, m: dict, value: np.ndarray, feas: np.ndarray) -> None:
        """Merge feasible designs into the top list (distinct by their metrics)."""
        for i in feas[np.argsort(value[feas], kind="stable")][:TOP_K]:
            metrics = {k: float(v[i]) for k, v in m.items()}
            if any(metrics == kept for _, _, kept in self.top):
                continue
            self.top.append((float(value[i]), dz.take(designs, int(i)), metrics))
        self.top.sort(key=lambda t: t[0])
        del self.top[TOP_K:]

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def state(self) -> tuple[dict, dict]:
        """``(scalars, arrays)``: everything needed to rebuild this recorder, as JSON-ready
        values and NumPy arrays (designs flattened to their leaves), for checkpoints."""
        arrays: dict[str, np.ndarray] = {}

        def design(name: str, d) -> str | None:
            if d is None:
                return None
            for i, leaf in enumerate(jax.tree_util.tree_leaves(d)):
                arrays[f"{name}.{i}"] = np.asarray(leaf)
            return name

        scalars = {
            "rows": self.rows,
            "evaluations": self.evaluations,
            "best": design("best", self.best),
            "best_metrics": self.best_metrics,
            "best_value": self.best_value,
            "closest": design("closest", self.closest),
            "closest_metrics": self.closest_metrics,
            "closest_miss": self.closest_miss,
            "closest_key": self._closest_key,
            "trace": self.trace,
            "top": [[v, design(f"top{i}", d), m] for i, (v, d, m) in enumerate(self.top)],
            "elapsed_s": self.elapsed(),
        }
        return scalars, arrays

    def restore(self, scalars: dict, arrays: dict, template) -> None:
        """Load :meth:`state` into this (new) recorder; ``template`` is a design whose tree
        structure the stored designs share. The clock continues from the saved time.
        Raises KeyError, IndexError, TypeError or ValueError on a malformed state."""
        tree = jax.tree_util.tree_structure(template)

        def design(name):
            if name is None:
                return None
            return jax.tree_util.tree_unflatten(
                tree, [arrays[f"{name}.{i}"] for i in range(tree.num_leaves)]
            )

        self.rows = list(scalars["rows"])
        self.evaluations = int(scalars["evaluations"])
        self.best, self.best_metrics = design(scalars["best"]), scalars["best_metrics"]
        self.best_value = float(scalars["best_value"])
        self.closest, self.closest_metrics = design(scalars["closest"]), scalars["closest_metrics"]
        miss = scalars["closest_miss"]
        self.closest_miss = None if miss is None else (str(miss[0]), float(miss[1]))
        self._closest_key = float(scalars["closest_key"])
        self.trace = [(float(t), int(n), float(v)) for t, n, v in scalars["trace"]]
        self.top = [(float(v), design(d), m) for v, d, m in scalars["top"]]
        self.start = time.perf_counter() - float(scalars["elapsed_s"])

    def result(
        self,
        method: str,
        seed: int,
        budget: SearchBudget | None = None,
        stopped: str = "converged",
    ) -> SearchResult:
        return SearchResult(
            method=method,
            seed=seed,
            objective=self.objective,
            best=self.best,
            best_metrics=self.best_metrics,
            evaluations=self.evaluations,
            wall_s=self.elapsed(),
            rows=self.rows,
            closest=None if self.best is not None else self.closest,
            closest_metrics=None if self.best is not None else self.closest_metrics,
            closest_miss=None if self.best is not None else self.closest_miss,
            trace=self.trace,
            top=[(d, m) for _, d, m in self.top],
            budget=budget if budget is not None else SearchBudget(),
            stopped=stopped,
        )
