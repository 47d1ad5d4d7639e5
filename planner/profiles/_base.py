"""What the modules of `planner.profiles` share: its error and the fewest rows a fit takes.

A module of its own (optuna's `_base` style) so that the operation model (`opmodel`), the
profile type and files (`planner.profiles`) and the `ops` fit (`opfit`) all import it, one
way, instead of `opmodel` importing the package that imports it.
"""

from __future__ import annotations

from spaces.errors import FastscaleError

MIN_ROWS = 3


class ProfileError(FastscaleError):
    """A malformed profile or timings file, or too few rows to fit."""
