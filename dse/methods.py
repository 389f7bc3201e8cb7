"""Every search method behind one signature, and :func:`search`, which picks one by name.

A method is ``fn(problem, budget, *, seed=0, settings=None, checkpoint=None, progress=None)
-> SearchResult``: ``settings`` is the method's own frozen dataclass (``None`` for its
defaults), ``checkpoint`` a folder to resume from (the gradient search only), ``progress(done,
total)`` a callback. A new method is added to :data:`METHODS` and nowhere else.

>>> sorted(METHODS)
['exact', 'exhaustive', 'gradient', 'nsga2', 'random']
"""

from __future__ import annotations

from collections.abc import Callable

from . import baselines, exact, gradient
from .problem import Problem, SearchBudget
from .result import SearchResult

METHODS: dict[str, Callable[..., SearchResult]] = {
    "gradient": gradient.run,
    "exhaustive": baselines.exhaustive_search,
    "random": baselines.random_search,
    "nsga2": baselines.nsga2_search,
    "exact": exact.exact_search,
}
"""Method name -> search function (the first is the default)."""

SETTINGS = {
    "gradient": gradient.GradientSettings,
    "exhaustive": baselines.ExhaustiveSettings,
    "random": baselines.RandomSettings,
    "nsga2": baselines.NSGA2Settings,
    "exact": exact.ExactSettings,
}
"""Method name -> its settings dataclass."""


def search(
    problem: Problem,
    method: str = "gradient",
    budget: SearchBudget | None = None,
    *,
    seed: int = 0,
    settings=None,
    checkpoint=None,
    progress=None,
) -> SearchResult:
    """Run the search ``method`` (a key of :data:`METHODS`) on ``problem`` within ``budget``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return METHODS[method](
        problem, budget, seed=seed, settings=settings, checkpoint=checkpoint, progress=progress
    )
