"""Plan budgets: parsing (absolute or relative), resolving relative ones against the plans,
and the one-line explanation when nothing fits (docs/planner.md, "Budgets").

A budget is absolute (`32M` acts, `100M` params, `18.5` runtime in the profile's unit,
`12GB` memory) or relative: `1.5x` means "at most 1.5 times the smallest value among the
on-target plans" — for runtime, no slower than 1.5 × the fastest plan that reaches the
target; for memory, at most 1.2 × the leanest one with `1.2x`. A relative budget is resolved
after every candidate is priced, so it needs no first pass by the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from planner.scale import check_factor
from spaces.errors import FastscaleError
from spaces.units import format_bytes, format_quantity, parse_bytes, parse_quantity

# budget keyword -> the plan column it limits
BUDGET_COLUMNS = {
    "max_acts": "acts",
    "max_params": "params",
    "max_runtime": "predicted_runtime",
    "max_memory": "predicted_memory",
}
_RELATIVE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*[x×]\s*$")


class PlanError(FastscaleError):
    """No plan satisfies the request (the message names the binding budget and by how
    much), or a malformed budget."""


@dataclass(frozen=True)
class Relative:
    """A budget as a multiple of the smallest on-target plan's value of its column."""

    factor: float

    def __str__(self) -> str:
        return f"{self.factor:g}x"


def parse_budget(value, key: str):
    """None, a positive number (absolute, in the column's unit) or Relative, for one budget;
    PlanError saying what is allowed otherwise."""
    if value is None:
        return None
    if isinstance(value, Relative):
        return value
    flag = f"--{key.replace('_', '-')}"
    if isinstance(value, str) and _RELATIVE.match(value):
        factor = float(_RELATIVE.match(value).group(1))
        return Relative(check_factor(factor, f"{flag} factor", PlanError))
    try:
        if key == "max_memory":
            return float(parse_bytes(value, flag))
        if key == "max_runtime":
            return check_factor(float(value), flag, PlanError)
        return float(parse_quantity(value, what=flag))
    except FastscaleError as exc:  # says what was wrong (not a size, not positive, ...)
        raise PlanError(
            f"{exc}; or 1.5x, a multiple of the smallest on-target plan's value"
        ) from None
    except (ValueError, TypeError):
        allowed = {
            "max_memory": "a size (12GB, 800MB, 1.5GiB, 1.5e10)",
            "max_runtime": "a positive number in the profile's unit (18.5)",
        }.get(key, "a positive quantity (32M, 4e7)")
        raise PlanError(
            f"{flag} {value!r} must be {allowed}, or a multiple of the smallest on-target "
            "plan's value like 1.5x"
        ) from None


def parse_budgets(**given) -> dict:
    """Every budget keyword of BUDGET_COLUMNS -> None, a number or Relative."""
    return {key: parse_budget(given.get(key), key) for key in BUDGET_COLUMNS}


def smallest(rows: list[dict], column: str) -> dict | None:
    """The first row with the smallest value of `column` (NaN skipped), or None."""
    best = None
    for r in rows:
        v = float(r[column])
        if v == v and (best is None or v < float(best[column])):
            best = r
    return best


def resolve_relative(rows: list[dict], budgets: dict) -> tuple[dict, dict]:
    """Absolute limits for every budget, and for each relative one what it was resolved
    against: {key: {"factor", "reference", "of"}} (the smallest on-target value and the plan
    that has it). With no on-target plan a relative budget cannot be resolved (inf)."""
    limits, relative = {}, {}
    on = [r for r in rows if r["on_target"]]
    for key, budget in budgets.items():
        if not isinstance(budget, Relative):
            limits[key] = budget
            continue
        best = smallest(on, BUDGET_COLUMNS[key])
        if best is None:
            limits[key] = np.inf
            continue
        reference = float(best[BUDGET_COLUMNS[key]])
        limits[key] = budget.factor * reference
        relative[key] = {"factor": budget.factor, "reference": reference, "of": plan_label(best)}
    return limits, relative


def fits(row: dict, limits: dict) -> bool:
    """Whether a plan is within every given limit (an unknown value, NaN, is not)."""
    return all(
        float(row[column]) <= limits[key]
        for key, column in BUDGET_COLUMNS.items()
        if limits.get(key) is not None
    )


def budget_name(key: str) -> str:
    """A budget as both faces spell it: the CLI flag and the `plan()` keyword."""
    return f"--{key.replace('_', '-')} ({key})"


def plan_label(row) -> str:
    """A plan as the tables name it: its strategy and scale factor."""
    return f"{row['strategy']} at s={row['s']:.3g}"


def format_budget(key: str, value, unit: str | None) -> str:
    if key == "max_runtime":
        return f"{value:.3g} {unit or ''}".rstrip()
    if key == "max_memory":
        return format_bytes(value)
    return format_quantity(value)


def describe_limit(
    key: str, limit: float, relative: dict, unit: str | None, keyword: bool = False
) -> str:
    """`--max-runtime 1.5x = 25.4 min/epoch (1.5 × 17 min/epoch of alpha=0.85 at s=4.11)`
    or `--max-acts 28.0M`; `keyword` adds the `plan()` keyword after the flag."""
    text = (budget_name(key) if keyword else f"--{key.replace('_', '-')}") + " "
    if key in relative:
        r = relative[key]
        return text + (
            f"{r['factor']:g}x = {format_budget(key, limit, unit)} "
            f"({r['factor']:g} × {format_budget(key, r['reference'], unit)} of {r['of']})"
        )
    return text + format_budget(key, limit, unit)


def nothing_fits(rows: list[dict], attrs: dict, limits: dict, relative: dict, tolerance) -> str:
    """Why no plan qualifies: no strategy on target, or which budget binds and by how much."""
    unit = attrs.get("unit")
    on = [r for r in rows if r["on_target"]]
    if not on:
        best = min(rows, key=lambda r: abs(r["miss"]))
        return (
            f"no strategy lands within ±{tolerance:.2%} of "
            f"{format_quantity(attrs['target'], 'F')}; the nearest is {best['strategy']} at "
            f"{format_quantity(best['flops'], 'F')} ({best['miss']:+.2%}); use --all "
            "(include_all) to see every candidate"
        )
    batch = attrs.get("batch")
    what = {"max_acts": "acts", "max_params": "params", "max_runtime": "runtime"}
    what["max_memory"] = f"per step at batch {batch}" if batch else "memory"
    binding = []
    for key, limit in limits.items():
        if limit is None:
            continue
        nearest = smallest(on, BUDGET_COLUMNS[key])
        need = np.nan if nearest is None else float(nearest[BUDGET_COLUMNS[key]])
        if need > limit:
            binding.append(
                f"{describe_limit(key, limit, relative, unit, True)}: the smallest on-target plan, "
                f"{plan_label(nearest)}, needs {format_budget(key, need, unit)} {what[key]} "
                f"({need / limit - 1:+.0%})"
            )
    if binding:
        return (
            "; ".join(binding) + "; raise the budget, or use --all (include_all) to see every plan"
        )
    given = ", ".join(
        describe_limit(k, v, relative, unit, True) for k, v in limits.items() if v is not None
    )
    return f"no on-target plan meets all budgets at once ({given}), though each alone can be met"
