"""One recommended plan out of a ranked plan table, and the sentence that says why.

The rule is the fast-scaling paper's (Dollár et al. 2021, §5-6): scaled with any α up to
about 0.8 (compound scaling that grows depth and resolution too), models reach the accuracy
of uniform compound scaling, while activations — and with them runtime — fall as α grows.
So among the plans that reach the target, fit every budget and lie in that accuracy-safe
range (accuracy tier 0 of `planner.plan`), take the fastest: the lowest predicted runtime
with a profile, else the fewest activations (the paper's runtime proxy, r = 0.99 with epoch
time). With `epochs` the ResNet-RS schedule rule decides instead (Bello et al. 2021): the
top plan of the width- or depth-leaning order. No safe plan fitting the budgets: the
top-ranked plan that does, said as such.
"""

from __future__ import annotations

import math

import numpy as np

from planner.budgets import BUDGET_COLUMNS, describe_limit, format_budget, plan_label, smallest

SAFE_RANGE = "compound scaling with α ≤ 0.8: the α family up to 0.8, dr, dwr, dWr, effnet"


def _speed_column(rows: list[dict]) -> tuple[str, str]:
    """The column the rule minimises and how the sentence names it."""
    if any(float(r["predicted_runtime"]) == float(r["predicted_runtime"]) for r in rows):
        return "predicted_runtime", "fastest predicted runtime"
    return "acts", "fewest activations"


def _budget_note(rows: list[dict], unit, limits: dict, relative: dict) -> str:
    """Whether the budgets excluded any on-target plan (said either way)."""
    given = {k: v for k, v in limits.items() if v is not None}
    on = sum(bool(r["on_target"]) for r in rows)
    if not given:
        return "no budget given"
    kept = sum(bool(r["on_target"] and r["fits"]) for r in rows)
    text = ", ".join(describe_limit(k, v, relative, unit) for k, v in given.items())
    if kept == on:
        return f"the budgets ({text}) exclude none of the {on} on-target plans"
    return f"the budgets ({text}) keep {kept} of {on} on-target plans"


def _value_text(row, column: str, unit: str | None) -> str:
    value = float(row[column])
    if column == "acts":
        return f"{value / 1e6:.1f}M acts"
    return f"{value:.3g} {unit or ''}".rstrip()


def _nearest_safe(rows: list[dict], limits: dict, unit: str | None) -> str:
    """', the nearest, dWr at s=4.49, needs 12.6GB (--max-memory 12.0GB)': the on-target safe
    plan that misses the budgets by the least (largest overshoot ratio), or ''."""
    safe = [r for r in rows if r["on_target"] and r["tier"] == 0]
    given = {k: v for k, v in limits.items() if v is not None and v > 0}
    if not safe or not given:
        return ""
    ratios = np.max(
        [[float(r[BUDGET_COLUMNS[k]]) / v for r in safe] for k, v in given.items()], axis=0
    )
    row = safe[int(np.nanargmin(ratios))]
    misses = [
        f"{format_budget(k, float(row[BUDGET_COLUMNS[k]]), unit)} for --{k.replace('_', '-')} "
        f"{format_budget(k, v, unit)}"
        for k, v in given.items()
        if float(row[BUDGET_COLUMNS[k]]) > v
    ]
    return f"; the nearest, {plan_label(row)}, needs {' and '.join(misses)}" if misses else ""


def recommend(rows: list[dict], attrs: dict, limits: dict, relative: dict, lean: str):
    """{"rank", "strategy", "alpha", "s", "why"} of the plan to take in a ranked table (the
    full one, rows with `fits`, `on_target`, `tier`; `attrs` its unit, batch and epochs), or
    None when no plan qualifies."""
    ok = [r for r in rows if r["fits"] and r["on_target"]]
    unit = attrs.get("unit")
    note = _budget_note(rows, unit, limits, relative)
    if not ok:
        return None
    batch = attrs.get("batch")
    at_batch = f" at batch {batch}" if batch else ""
    if lean in ("width", "depth"):
        row = ok[0]
        why = (
            f"the ResNet-RS schedule rule for {attrs.get('epochs'):g} epochs: the most "
            f"{lean}-leaning plan that reaches the target"
            + (" and fits the budgets" if note != "no budget given" else "")
            + f" ({lean} scaling won on {'short' if lean == 'width' else 'long'} schedules for "
            "ResNets on ImageNet: guidance, confirm with `fastscale compare`)"
        )
    else:
        column, speed = _speed_column(ok)
        safe = [r for r in ok if r["tier"] == 0]
        if not safe:
            row = ok[0]
            why = (
                "no plan in the accuracy-safe range fits the budgets (that range: "
                f"{SAFE_RANGE}){_nearest_safe(rows, limits, unit)}; this is the most "
                "accuracy-leaning plan that does"
            )
        else:
            row = smallest(safe, column)
            among = "the only plan" if len(safe) == 1 else f"{speed} among the {len(safe)} plans"
            proxy = " (activations: the paper's runtime proxy)" if column == "acts" else ""
            why = (
                f"{among} in the accuracy-safe range ({SAFE_RANGE}) that reach the target"
                f"{' and fit the budgets' if note != 'no budget given' else ''}: "
                f"{_value_text(row, column, unit)}{at_batch if column != 'acts' else ''}{proxy}"
            )
    alpha = float(row["alpha"])
    return {
        "rank": int(row["rank"]),
        "strategy": str(row["strategy"]),
        "alpha": None if math.isnan(alpha) else alpha,
        "s": float(row["s"]),
        "label": plan_label(row),
        "why": f"{why}; {note}",
    }
