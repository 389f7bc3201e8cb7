"""Design-space search: spaces, relaxation, objectives and budgets, gradient and baseline
searches, Pareto fronts.

>>> from dse import Space
>>> Space.from_dict({"rows": [16, 32]}).searched
('rows',)
"""

from .design import Design, base_design, describe, evaluate_population, metrics
from .gradient import GradientSettings
from .gradient import run as run_gradient
from .objective import OBJECTIVES, Budgets
from .relax import Problem
from .result import SearchResult
from .space import Space, load_space

__all__ = [
    "OBJECTIVES",
    "Budgets",
    "Design",
    "GradientSettings",
    "Problem",
    "SearchResult",
    "Space",
    "base_design",
    "describe",
    "evaluate_population",
    "load_space",
    "metrics",
    "run_gradient",
]
