"""Design-space search: spaces, problems and budgets, relaxation, objectives, the search
methods behind one API (``search``, ``METHODS``), Pareto fronts.

>>> from dse import Space
>>> Space.from_dict({"rows": [16, 32]}).searched
('rows',)
"""

from .baselines import (
    ExhaustiveSettings,
    NSGA2Settings,
    RandomSettings,
    exhaustive_search,
    nsga2_search,
    random_search,
)
from .design import Design, base_design, describe, evaluate_population, metrics
from .exact import ExactSettings, exact_search
from .gradient import GradientSettings
from .gradient import run as run_gradient
from .methods import METHODS, SETTINGS, search
from .objective import OBJECTIVES, Budgets
from .problem import Problem, SearchBudget
from .result import SearchResult
from .space import Space, load_space

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "SETTINGS",
    "Budgets",
    "Design",
    "ExactSettings",
    "ExhaustiveSettings",
    "GradientSettings",
    "NSGA2Settings",
    "Problem",
    "RandomSettings",
    "SearchBudget",
    "SearchResult",
    "Space",
    "base_design",
    "describe",
    "evaluate_population",
    "exact_search",
    "exhaustive_search",
    "load_space",
    "metrics",
    "nsga2_search",
    "random_search",
    "run_gradient",
    "search",
]
