"""Scaling: strategies, rounding, target solving, runtime profiles and ranked plans.

Submodules: `planner.strategies`, `planner.scale`, `planner.solve` (`solve`, `solve_many`),
`planner.plan` (`plan_table`, plain rows; `plan`, the same as a pandas DataFrame, importing
pandas on first use),
`planner.profiles`. The package names `solve` and `plan` stay the submodules (import the
functions from them), so `import planner.solve` always means the module. Pure numpy.
"""

from planner.profiles import RuntimeProfile, fit_profile, load_profile, predict
from planner.scale import realised_factors, scale_spec
from planner.solve import Solution, solve_many
from planner.strategies import Strategy, get_strategy

__all__ = [
    "RuntimeProfile",
    "Solution",
    "Strategy",
    "fit_profile",
    "get_strategy",
    "load_profile",
    "predict",
    "realised_factors",
    "scale_spec",
    "solve_many",
]
