"""Plans: solve a target for the α family and the named strategies, check budgets, rank.

Ranking (docs/planner.md explains it from the paper), deterministic, best first:

1. plans that fit every budget (max_acts, max_params, max_runtime, max_memory), then the rest;
2. on-target plans (within tolerance), then misses;
3. accuracy tier: 0 = compound strategies that scale depth and resolution and put at most
   80 % of the flop growth into width (α ≤ 0.8, dwr, dr, effnet: the paper's accurate
   plateau); 1 = 0.8 < α < 1 (accuracy starts to drop towards w); 2 = single- and
   two-dimension strategies that leave depth or resolution alone (w, d, r, dw, wr);
4. width share ascending (α for the family): more depth and resolution per flop first —
   the most accuracy-leaning plan that still fits the budgets comes first; a tight acts or
   runtime budget pushes the choice towards larger α (fewer activations, faster);
5. then |miss|, acts, strategy name.

With `epochs` (the training length), steps 3-4 follow the ResNet-RS finding instead (Bello et
al. 2021, §7): below SHORT_SCHEDULE epochs width scaling wins, so the most width-leaning plan
comes first; from LONG_SCHEDULE epochs on depth scaling wins, so the most depth-leaning plan
comes first; in between the order above (the fast-scaling paper's own 100-400 epoch regime)
stays. Guidance, not a law: the finding is for ResNets on ImageNet under its recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.budgets import PlanError, fits, nothing_fits, parse_budgets, resolve_relative
from planner.profiles import RuntimeProfile, load_profile
from planner.profiles.coverage import coverage_warning
from planner.recommend import recommend
from planner.scale import S_RANGE, check_factor
from planner.solve import DEFAULT_TOLERANCE, Solution, solve_many
from planner.strategies import Strategy, StrategyError, alpha_grid, alpha_strategy, get_strategy
from spaces.op_walk import stages_ops_batch
from spaces.units import parse_quantity

DEFAULT_STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr", "effnet")
# ResNet-RS tested 10, 100 and 350 epochs: width won at 10, depth at 350.
SHORT_SCHEDULE = 100  # fewer epochs than this: width first
LONG_SCHEDULE = 300  # this many epochs or more: depth first
PLATEAU_ALPHA = 0.8  # the paper: α up to ~0.8 keeps dwr-level accuracy
COLUMNS = [
    "rank", "strategy", "alpha", "s", "factor", "depth_factor", "width_factor",
    "group_width_factor", "resolution_factor", "depths", "widths", "group_widths",
    "resolution", "flops", "params", "acts", "predicted_runtime", "predicted_memory",
    "on_target", "miss",
    "fits", "tier", "finetuned", "spec",
]  # fmt: skip


__all__ = [
    "COLUMNS", "PlanError", "PlanTable", "accuracy_tier", "candidate_strategies", "plan",
    "plan_table",
]  # fmt: skip


def accuracy_tier(strategy: Strategy) -> int:
    """0: compound on the accurate plateau, 1: α between 0.8 and 1, 2: partial strategies."""
    if strategy.d <= 0 or strategy.r <= 0:
        return 2
    share = strategy.width_share
    return 0 if share <= PLATEAU_ALPHA + 1e-9 else (1 if share < 1 else 2)


def default_strategies(spec) -> tuple[str, ...]:
    """The paper's named strategies plus the rules derived for the spec's block (rs)."""
    extra = spec.stages().kind.strategies
    return DEFAULT_STRATEGIES + tuple(s for s in extra if s not in DEFAULT_STRATEGIES)


def schedule_lean(epochs) -> str:
    """'width', 'depth' or 'paper': how `epochs` orders the plans (module docstring)."""
    if epochs is None:
        return "paper"
    epochs = check_factor(epochs, "epochs", PlanError)
    if epochs < SHORT_SCHEDULE:
        return "width"
    return "depth" if epochs >= LONG_SCHEDULE else "paper"


def candidate_strategies(alphas=None, strategies=DEFAULT_STRATEGIES) -> list[Strategy]:
    """The α grid plus the named strategies; a named one equal to a grid α replaces it."""
    grid = alpha_grid() if alphas is None else list(alphas)
    out = [alpha_strategy(a) for a in grid]
    for name in strategies or ():
        s = get_strategy(name)
        same = next((i for i, o in enumerate(out) if o.same_as(s)), None)
        if same is None:
            out.append(s)
        elif out[same].name.startswith("alpha="):
            out[same] = Strategy(s.name, s.d, s.w, s.g, s.r, alpha=out[same].alpha)
    return out


def predictions(sols: list[Solution], profile: RuntimeProfile | None, batch: int | None = None):
    """(runtime in the profile's unit, peak memory bytes) arrays of the solutions at `batch`
    (default: the profile's); NaN where the profile has no such model. An `ops` profile
    prices all of them in one vectorized op walk (`spaces.op_walk.stages_ops_batch`): they share
    one base. A `linear` profile has no batch term: its figures hold at its own batch."""
    n = len(sols)
    nan = np.full(n, np.nan)
    if profile is None:
        return nan, nan
    if profile.kind == "linear":
        acts = np.array([s.acts for s in sols], dtype=np.float64)
        flops = np.array([s.flops for s in sols], dtype=np.float64)
        return np.asarray(profile.predict(acts, flops), dtype=np.float64).reshape(n), nan

    def column(key):
        return np.array([s.changes[key] for s in sols], dtype=np.int64)

    ops = stages_ops_batch(
        sols[0].base, column("depths"), column("widths"), column("group_widths"),
        column("resolution"), column("stem_width"), column("head_width"),
    )  # fmt: skip
    priced = profile.price(ops, batch)
    memory = priced["memory_bytes"]
    return priced["runtime"], nan if memory is None else memory


def _row(sol: Solution, runtime: float, memory: float) -> dict:
    spec = sol.changes
    return {
        "strategy": sol.strategy.name,
        "alpha": np.nan if sol.alpha is None else float(sol.alpha),
        "s": sol.s,
        "factor": sol.factor,
        "depth_factor": sol.depth_factor,
        "width_factor": sol.width_factor,
        "group_width_factor": sol.group_width_factor,
        "resolution_factor": sol.resolution_factor,
        "depths": spec["depths"],
        "widths": spec["widths"],
        "group_widths": spec["group_widths"],
        "resolution": spec["resolution"],
        "flops": sol.flops,
        "params": sol.params,
        "acts": sol.acts,
        "predicted_runtime": runtime,
        "predicted_memory": memory,
        "on_target": sol.on_target,
        "miss": sol.miss,
        "tier": accuracy_tier(sol.strategy),
        "width_share": sol.strategy.width_share,
        "depth_share": sol.strategy.exponents[0],
        "finetuned": sol.finetuned,
        "spec": sol.spec_dict(),
    }


@dataclass(frozen=True)
class PlanTable:
    """Ranked plans as plain rows (dicts in the COLUMNS order, best first) and `attrs`, what
    they answer (see `plan`). `plan()` wraps it in a DataFrame; the CLI reads it directly, so
    `fastscale plan` never imports pandas."""

    rows: list
    attrs: dict


def plan(spec, target_flops, *args, **kwargs):
    """`plan_table`'s ranked plans as a pandas DataFrame, `df.attrs` its attrs (same
    arguments, same errors)."""
    import pandas as pd

    table = plan_table(spec, target_flops, *args, **kwargs)
    df = pd.DataFrame(table.rows, columns=COLUMNS)
    df.attrs.update(table.attrs)
    return df


def plan_table(
    spec,
    target_flops,
    alphas=None,
    strategies=None,
    max_acts=None,
    max_params=None,
    max_runtime=None,
    profile=None,
    tolerance: float = DEFAULT_TOLERANCE,
    include_all: bool = False,
    epochs=None,
    max_memory=None,
    batch: int | None = None,
    resolution: int | None = None,
    spec_ref: str | None = None,
) -> PlanTable:
    """Ranked plans (a `PlanTable`; `plan()`: a DataFrame) for reaching `target_flops` from
    `spec`.

    `strategies` None = `default_strategies(spec)`; `epochs` (training length) switches the
    ranking to the ResNet-RS schedule guidance (module docstring). `resolution` trains the
    base at that many pixels (the plans scale from there); `batch` prices runtime and memory
    at that batch (default: the profile's; an `ops` profile only — a `linear` one has no
    batch term). Budgets are absolute (`max_runtime` in the profile's unit, `max_memory` in
    bytes or '12GB', peak per training step at the batch, needing an `ops` profile) or
    relative, '1.5x' of the smallest on-target plan's value (`planner.budgets`).

    By default only on-target plans that fit every budget; `include_all` keeps every
    candidate with its `miss` and `fits`. Raises PlanError naming the binding budget when
    nothing qualifies (unless `include_all`). `attrs` carries the request, the batch and
    base resolution the figures hold at, `recommendation` (`planner.recommend`) and
    `warnings` (predictions outside the profile's calibrated range; `spec_ref`, the name the
    user gave `spec`, goes into the `fastscale calibrate` command a warning suggests).
    """
    if isinstance(target_flops, str):
        target_flops = parse_quantity(target_flops, what="target")
    budgets = parse_budgets(
        max_acts=max_acts, max_params=max_params, max_runtime=max_runtime, max_memory=max_memory
    )
    if profile is not None:
        profile = load_profile(profile)
    _check_profile_serves(budgets, profile)
    if resolution is not None:
        spec = spec.with_resolution(int(check_factor(resolution, "resolution", PlanError)))
    lean = schedule_lean(epochs)
    if strategies is None:
        strategies = default_strategies(spec)
    if alphas is not None:
        alphas = [_alpha(a) for a in alphas]
        if not alphas and not strategies:
            raise PlanError("nothing to plan: give at least one alpha or strategy")
    sols = solve_many(spec, candidate_strategies(alphas, strategies), target_flops, tolerance)
    sols, degenerate = _drop_degenerate(sols)
    asked_batch, batch = batch, _pricing_batch(profile, batch)
    runtime, memory = predictions(sols, profile, batch)
    rows = [_row(s, t, m) for s, t, m in zip(sols, runtime, memory, strict=True)]
    limits, relative = resolve_relative(rows, budgets)
    rows = _ranked(rows, limits, lean)
    attrs = _plan_attrs(sols[0], tolerance, budgets, limits, relative, profile, lean)
    attrs.update(batch=batch, asked_batch=asked_batch, epochs=epochs, degenerate=degenerate)
    attrs["recommendation"] = recommend(rows, attrs, limits, relative, lean)
    attrs["warnings"] = _warnings(rows, attrs, profile, batch, spec_ref)
    if include_all:
        return PlanTable(rows, attrs)
    keep = [r for r in rows if r["fits"] and r["on_target"]]
    if not keep:
        raise PlanError(nothing_fits(rows, attrs, limits, relative, tolerance))
    return PlanTable(keep, attrs)  # fits & on_target sort first: the ranks stay as they were


def _drop_degenerate(sols: list[Solution]) -> tuple[list[Solution], list[str]]:
    """Solutions the solver could only pin at the edge of S_RANGE (e.g. depth scaling below
    one block per stage) are no scaling at all: dropped, their strategies named."""
    lo, hi = S_RANGE
    edge = [s.s <= lo * (1 + 1e-6) or s.s >= hi * (1 - 1e-6) for s in sols]
    if all(edge):
        return sols, []
    kept = [s for s, e in zip(sols, edge, strict=True) if not e]
    return kept, [s.strategy.name for s, e in zip(sols, edge, strict=True) if e]


def _pricing_batch(profile: RuntimeProfile | None, batch) -> int | None:
    """The batch the figures hold at: the asked one for an `ops` profile, else the profile's."""
    if batch is not None:
        batch = int(check_factor(batch, "batch", PlanError))
    if profile is None:
        return batch
    if profile.kind == "ops":
        return batch or profile.batch
    return profile.batch


def _warnings(rows, attrs, profile: RuntimeProfile | None, batch, spec_ref) -> list[str]:
    """One-line warnings about the figures: outside the profile's calibrated range, or a
    batch a linear profile cannot price."""
    if profile is None or not rows:
        return []
    out = []
    asked = attrs.get("asked_batch")
    if profile.kind == "linear" and asked is not None and asked != profile.batch:
        out.append(
            f"profile {profile.name!r} is linear: its runtime holds at its own batch "
            f"({profile.batch or 'not recorded'}), not {asked}; `fastscale calibrate "
            f"--batch-size {asked}` makes one that prices any batch"
        )
    widths = [w for r in rows for w in r["widths"]]
    warning = coverage_warning(
        profile, batch=batch, resolutions=[r["resolution"] for r in rows], widths=widths,
        flops=[r["flops"] for r in rows], acts=[r["acts"] for r in rows], spec_ref=spec_ref,
    )  # fmt: skip
    return out + ([warning] if warning else [])


def _plan_attrs(
    sol: Solution, tolerance, budgets: dict, limits: dict, relative: dict, profile, lean: str
) -> dict:
    """What a plan table carries besides its rows (`df.attrs`): the request it answers."""
    return dict(
        target=int(sol.target),
        base_flops=int(sol.base_flops),
        base_resolution=int(sol.base.resolution),
        scaled_down=bool(sol.target < sol.base_flops),
        tolerance=float(tolerance),
        budgets={k: float(v) for k, v in limits.items() if v is not None},
        budgets_asked={k: str(v) for k, v in budgets.items() if v is not None},
        relative=relative,
        profile=None if profile is None else profile.name,
        lean=lean,
        unit=None if profile is None else profile.unit,
    )


def _check_profile_serves(budgets: dict, profile: RuntimeProfile | None) -> None:
    """A runtime budget needs a profile, a memory budget one with a memory model."""
    if budgets["max_runtime"] is not None and profile is None:
        raise PlanError("max_runtime needs a runtime profile (e.g. profile='v100x8-paper')")
    if budgets["max_memory"] is not None and (profile is None or not profile.memory):
        given = (
            "no profile was given"
            if profile is None
            else f"profile {profile.name!r} ({profile.kind}) has none"
        )
        raise PlanError(
            f"max_memory needs a profile with a memory model (kind 'ops'), and {given}; make "
            "one with `fastscale calibrate --out PROFILE` and pass --profile PROFILE"
        )


def _ranked(rows: list[dict], limits: dict, lean: str) -> list[dict]:
    """The candidates with `fits`, sorted (stably) by the ranking of the module docstring and
    numbered, in the COLUMNS order."""
    for r in rows:
        r["fits"] = fits(r, limits)

    def key(r):
        if lean == "paper":
            leaning = (r["tier"], r["width_share"])
        else:  # the schedule decides the lean; the plateau tiers do not apply
            leaning = (-(r["width_share"] if lean == "width" else r["depth_share"]),)
        return (
            not r["fits"],
            not r["on_target"],
            *leaning,
            abs(r["miss"]),
            r["acts"],
            r["strategy"],
        )

    ranked = sorted(rows, key=key)
    return [
        {c: (i if c == "rank" else r[c]) for c in COLUMNS} for i, r in enumerate(ranked, start=1)
    ]


def _alpha(a) -> float:
    try:
        return alpha_strategy(a).alpha
    except StrategyError:
        raise PlanError(f"alpha must be in [0, 1], got {a!r}") from None
