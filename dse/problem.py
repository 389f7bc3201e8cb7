"""What every search method is given: the problem (fixed during a search) and its budget.

A :class:`Problem` is the space, the workload, the objective, the budgets on the design
(latency, power, area, accuracy) and the accuracy model; a :class:`SearchBudget` bounds the
search itself (exact evaluations and wall time). Both are validated once, when built: a bad
field raises a one-line ``ValueError`` naming it and what is allowed.

>>> SearchBudget(evaluations=200, time_s=30.0)
SearchBudget(evaluations=200, time_s=30.0)
>>> SearchBudget(evaluations=0)
Traceback (most recent call last):
...
ValueError: budget evaluations must be a positive integer, got 0
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys

from hw.types import NPUConfig, Workload

from . import objective as obj
from .accuracy import AccuracyModel
from .llmstep import LLMStep
from .space import Space
from .suite import Suite


@dataclasses.dataclass(frozen=True)
class SearchBudget:
    """How much a search may spend: exact evaluations and wall seconds (``None``: no bound).

    The clock starts when the method is called, so compilation counts. A method stops at
    whichever budget runs out first and returns the best exact design found so far.
    """

    evaluations: int | None = None
    time_s: float | None = None

    def __post_init__(self):
        n = self.evaluations
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ValueError(f"budget evaluations must be a positive integer, got {n!r}")
        t = self.time_s
        real = isinstance(t, numbers.Real) and not isinstance(t, bool)
        if t is not None and not (real and math.isfinite(t) and t > 0):
            raise ValueError(f"budget time_s must be a positive finite number (s), got {t!r}")

    @property
    def unbounded(self) -> bool:
        return self.evaluations is None and self.time_s is None

    def exhausted(self, evaluations: int, elapsed_s: float) -> str | None:
        """Which budget has run out after ``evaluations`` in ``elapsed_s``: ``"evaluations"``,
        ``"time"`` or None."""
        if self.evaluations is not None and evaluations >= self.evaluations:
            return "evaluations"
        if self.time_s is not None and elapsed_s >= self.time_s:
            return "time"
        return None

    def left(self, evaluations: int) -> int:
        """Exact evaluations still allowed after ``evaluations`` (``sys.maxsize``: no bound)."""
        if self.evaluations is None:
            return sys.maxsize
        return max(0, self.evaluations - evaluations)


@dataclasses.dataclass(frozen=True)
class Problem:
    """Everything fixed during a search: space, workload, objective, budgets, accuracy model.

    ``budgets`` bound the designs (:class:`dse.objective.Budgets`); an accuracy floor needs an
    accuracy model (``dse.accuracy.AccuracyModel``) with one sensitivity per layer.
    """

    space: Space
    workload: Workload
    objective: str
    budgets: obj.Budgets = obj.Budgets()
    accuracy: AccuracyModel | None = None
    suite: Suite | None = None  # several networks in ``workload`` (dse.suite)
    llm: LLMStep | None = None  # a decoder step: operand-class widths, residency (dse.llmstep)

    def __post_init__(self):
        if not isinstance(self.space, Space):
            raise ValueError(f"problem space must be a dse.Space, got {type(self.space).__name__}")
        if not isinstance(self.workload, Workload):
            raise ValueError(
                f"problem workload must be an hw.types.Workload, got {type(self.workload).__name__}"
            )
        if self.objective not in obj.OBJECTIVES:
            raise ValueError(
                f"problem objective must be one of {', '.join(obj.OBJECTIVES)}, "
                f"got {self.objective!r}"
            )
        if not isinstance(self.budgets, obj.Budgets):
            raise ValueError(
                f"problem budgets must be dse.Budgets, got {type(self.budgets).__name__}"
            )
        self.budgets.check()
        if self.accuracy is not None and not isinstance(self.accuracy, AccuracyModel):
            raise ValueError(
                "problem accuracy must be a dse.accuracy.AccuracyModel or None, "
                f"got {type(self.accuracy).__name__}"
            )
        self._check_suite()
        self._check_llm()
        n = self.workload.num_layers
        bad = [i for i, _, _ in self.space.fixed_bits if not 0 <= i < n]
        if bad:
            raise ValueError(
                f"problem space fixes the widths of layer {bad[0]}; layers: 0..{n - 1}"
            )
        if self.budgets.min_accuracy is not None and self.accuracy is None:
            raise ValueError("problem budgets.min_accuracy needs an accuracy model (accuracy=)")

    def _check_llm(self) -> None:
        if self.llm is None:
            return
        if not isinstance(self.llm, LLMStep):
            raise ValueError(
                f"problem llm must be a dse.llmstep.LLMStep or None, got {type(self.llm).__name__}"
            )
        if self.space.per_layer_bits:
            raise ValueError(
                "problem space for an LLM step must have per_layer_bits false (its widths are "
                "per operand class: weights, activations, KV cache)"
            )
        if self.suite is not None:
            raise ValueError("problem llm takes no suite (one decoder step is the workload)")

    def _check_suite(self) -> None:
        nets = self.suite.names if self.suite is not None else ()
        for name, _ in self.budgets.network_latency_s:
            if name not in nets:
                raise ValueError(f"problem budget names network {name!r}; suite networks: {nets}")
        if self.suite is not None and sum(self.suite.sizes) != self.workload.num_layers:
            raise ValueError(
                f"problem suite has {sum(self.suite.sizes)} layers, the workload "
                f"{self.workload.num_layers}"
            )
        if self.suite is not None and self.objective != self.suite.objective:
            raise ValueError(
                f"problem objective {self.objective!r} differs from the suite's "
                f"{self.suite.objective!r}"
            )

    @property
    def base(self) -> NPUConfig:
        return self.space.base_config()
