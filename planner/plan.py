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

import numpy as np

from planner.profiles import RuntimeProfile, load_profile
from planner.scale import check_factor
from planner.solve import DEFAULT_TOLERANCE, Solution, solve_many
from planner.strategies import Strategy, StrategyError, alpha_grid, alpha_strategy, get_strategy
from spaces.errors import FastscaleError
from spaces.op_walk import stages_ops_batch
from spaces.units import format_bytes, format_quantity, parse_bytes, parse_quantity

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


class PlanError(FastscaleError):
    """No plan satisfies the request; the message names the binding budget and by how much."""


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


def _budget(value, what: str) -> float | None:
    if value is None:
        return None
    return (
        float(parse_quantity(value, what=what))
        if isinstance(value, str)
        else check_factor(value, what, PlanError)
    )


def predictions(sols: list[Solution], profile: RuntimeProfile | None):
    """(runtime in the profile's unit, peak memory bytes) arrays of the solutions; NaN where
    the profile has no such model. An `ops` profile prices all of them in one vectorized
    op walk (`spaces.op_walk.stages_ops_batch`): they share one base."""
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
    priced = profile.price(ops)
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


def plan(
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
):
    """Ranked plans (a pandas DataFrame) for reaching `target_flops` from `spec`.

    `strategies` None = `default_strategies(spec)`; `epochs` (training length) switches the
    ranking to the ResNet-RS schedule guidance (module docstring).
    By default only on-target plans that fit every budget; `include_all` keeps every
    candidate with its `miss` and `fits`. Raises PlanError naming the binding budget when
    nothing qualifies (unless `include_all`). `max_runtime` is in the profile's unit;
    `max_memory` (bytes, or '12GB') is the peak training memory per step at the profile's
    batch and needs a profile with a memory model (kind `ops`, from `fastscale calibrate`).
    """
    import pandas as pd

    if isinstance(target_flops, str):
        target_flops = parse_quantity(target_flops, what="target")
    budgets = _budgets(max_acts, max_params, max_runtime, max_memory)
    if profile is not None:
        profile = load_profile(profile)
    _check_profile_serves(budgets, profile)
    lean = schedule_lean(epochs)
    if strategies is None:
        strategies = default_strategies(spec)
    if alphas is not None:
        alphas = [_alpha(a) for a in alphas]
        if not alphas and not strategies:
            raise PlanError("nothing to plan: give at least one alpha or strategy")
    strats = candidate_strategies(alphas, strategies)
    sols = solve_many(spec, strats, target_flops, tolerance)
    runtime, memory = predictions(sols, profile)
    df = pd.DataFrame([_row(s, t, m) for s, t, m in zip(sols, runtime, memory, strict=True)])
    df = _ranked(df, budgets, lean)
    df.attrs.update(_plan_attrs(sols[0], tolerance, budgets, profile, lean))
    if include_all:
        return df
    keep = df[df["fits"] & df["on_target"]].reset_index(drop=True)
    if keep.empty:
        raise PlanError(_nothing_fits(df, budgets, profile, tolerance))
    keep["rank"] = np.arange(1, len(keep) + 1)
    keep.attrs.update(df.attrs)
    return keep


def _plan_attrs(sol: Solution, tolerance, budgets: dict, profile, lean: str) -> dict:
    """What a plan table carries besides its rows (`df.attrs`): the request it answers."""
    return dict(
        target=int(sol.target),
        base_flops=int(sol.base_flops),
        tolerance=float(tolerance),
        budgets={k: v for k, v in budgets.items() if v is not None},
        profile=None if profile is None else profile.name,
        lean=lean,
        unit=None if profile is None else profile.unit,
        batch=None if profile is None else profile.batch,
    )


def _budgets(max_acts, max_params, max_runtime, max_memory) -> dict:
    """Each budget as a number (None: no such budget), or PlanError for a bad one."""
    return {
        "max_acts": _budget(max_acts, "max_acts"),
        "max_params": _budget(max_params, "max_params"),
        "max_runtime": None
        if max_runtime is None
        else check_factor(max_runtime, "max_runtime", PlanError),
        "max_memory": None if max_memory is None else parse_bytes(max_memory, "max_memory"),
    }


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


def _ranked(df, budgets: dict, lean: str):
    """The candidates with `fits`, sorted by the ranking of the module docstring and
    numbered, in the COLUMNS order."""
    fits = np.ones(len(df), bool)
    for key, col in _BUDGET_COLUMNS.items():
        if budgets[key] is not None:
            fits &= df[col].to_numpy() <= budgets[key]
    df["fits"] = fits
    df["abs_miss"] = df["miss"].abs()
    keys = ["fits", "on_target", "tier", "width_share", "abs_miss", "acts", "strategy"]
    ascending = [False, False, True, True, True, True, True]
    if lean != "paper":  # the schedule decides the lean; the plateau tiers do not apply
        df["lean"] = -df["width_share"] if lean == "width" else -df["depth_share"]
        keys[2:4], ascending[2:4] = ["lean"], [True]
    df = df.sort_values(keys, ascending=ascending, kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df[COLUMNS]


def _alpha(a) -> float:
    try:
        return alpha_strategy(a).alpha
    except StrategyError:
        raise PlanError(f"alpha must be in [0, 1], got {a!r}") from None


_BUDGET_COLUMNS = {
    "max_acts": "acts",
    "max_params": "params",
    "max_runtime": "predicted_runtime",
    "max_memory": "predicted_memory",
}


def _fmt(key, value, profile) -> str:
    if key == "max_runtime":
        return f"{value:.3g} {profile.unit}"
    if key == "max_memory":
        return format_bytes(value)
    return format_quantity(value)


def _budget_name(key: str) -> str:
    """A budget as both faces spell it: the CLI flag and the `plan()` keyword."""
    return f"--{key.replace('_', '-')} ({key})"


def _plan_label(row) -> str:
    """A plan as the tables name it: its strategy and scale factor."""
    return f"{row['strategy']} at s={row['s']:.3g}"


def _nothing_fits(df, budgets, profile, tolerance) -> str:
    """Which budget binds, and by how much, for the on-target plans."""
    target = df.attrs["target"]
    on = df[df["on_target"]]
    if on.empty:
        best = df.loc[df["miss"].abs().idxmin()]
        return (
            f"no strategy lands within ±{tolerance:.2%} of {format_quantity(target, 'F')}; "
            f"the nearest is {best['strategy']} at {format_quantity(best['flops'], 'F')} "
            f"({best['miss']:+.2%}); use --all (include_all) to see every candidate"
        )
    col = _BUDGET_COLUMNS
    what = {"max_acts": "acts", "max_params": "params", "max_runtime": "runtime"}
    what["max_memory"] = f"per step at batch {profile.batch}" if profile else "memory"
    binding = []
    for key, limit in budgets.items():
        if limit is None:
            continue
        nearest = on.loc[on[col[key]].idxmin()]
        need = float(nearest[col[key]])
        if need > limit:
            binding.append(
                f"{_budget_name(key)} {_fmt(key, limit, profile)}: the smallest on-target plan, "
                f"{_plan_label(nearest)}, needs {_fmt(key, need, profile)} {what[key]} "
                f"({need / limit - 1:+.0%})"
            )
    if binding:
        return (
            "; ".join(binding) + "; raise the budget, or use --all (include_all) to see every plan"
        )
    given = ", ".join(
        f"{_budget_name(k)} {_fmt(k, v, profile)}" for k, v in budgets.items() if v is not None
    )
    return f"no on-target plan meets all budgets at once ({given}), though each alone can be met"
