"""Scaling: strategies, rounding, target solving, runtime profiles and ranked plans.

Pure numpy; `planner.plan` (which returns a pandas DataFrame) is imported on first use, so
`import planner` stays cheap.
"""

from planner.profiles import RuntimeProfile, fit_profile, load_profile, predict
from planner.scale import realised_factors, scale_spec
from planner.solve import Solution, solve, solve_many
from planner.strategies import Strategy, get_strategy

__all__ = [
    "RuntimeProfile",
    "Solution",
    "Strategy",
    "fit_profile",
    "get_strategy",
    "load_profile",
    "plan",
    "predict",
    "realised_factors",
    "scale_spec",
    "solve",
    "solve_many",
]


def __getattr__(name):
    if name == "plan":
        from planner.plan import plan

        return plan
    raise AttributeError(f"module 'planner' has no attribute {name!r}")
