"""Target solving: the scaled network whose flops land closest to a target.

flops(s) is a step function of s: every rounding rule of docs/planner.md, "Scaling and rounding" (per-stage depth, width, group
width, resolution) changes value at known s, the breakpoints ((m + ½)/v)^(1/e). The solver

1. brackets the target on a coarse log grid of s (extending it when the target lies beyond);
2. enumerates EVERY breakpoint inside the bracket and evaluates one s per step between them,
   so no level of the step function is missed and the closest single-s network is exact;
3. only when no single s lands within tolerance, fine-tunes within the strategy's spirit:
   the continuous width factor by up to ±5 %, then the group width among neighbouring
   compatible values, then the resolution by up to ±4 steps of 4 px, then the depth by ±1
   block in one or two stages (tiny networks, where one width step of 8 channels moves
   flops by 20 %), and last the width by up to ±25 % with the group width and depth knobs
   (tiny resolutions, where one 4 px step can triple the flops), picking the smallest
   realised change that lands; what changed and by how much is reported. A target no
   candidate reaches is reported off target, with the nearest networks below and above it.

All strategies of a plan are solved together: each phase is one batched evaluation
(`planner.search`); this module checks the request and reports what was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from planner import search
from planner.scale import S_RANGE, as_strategy
from planner.strategies import Strategy
from spaces.complexity import INT64_SAFE, complexity
from spaces.errors import FastscaleError
from spaces.specs import StageSpec
from spaces.validate import check_positive

DEFAULT_TOLERANCE = 0.01


class SolveError(FastscaleError):
    """A target that is not a positive number of flops, or a bad tolerance."""


@dataclass(frozen=True)
class Solution:
    """The network a strategy reaches for a target, with what was realised and how."""

    strategy: Strategy
    target: int
    base: StageSpec = field(repr=False)
    changes: dict = field(repr=False)  # the scaled stage fields (depths, widths, ...)
    s: float  # nominal flop factor fed to the strategy
    factor: float  # realised flops / base flops
    flops: int
    params: int
    acts: int
    depth_factor: float
    width_factor: float
    group_width_factor: float
    resolution_factor: float
    on_target: bool
    miss: float  # (flops - target) / target
    tolerance: float
    base_flops: int
    finetuned: dict = field(default_factory=dict)  # empty unless fine-tuned
    below: int | None = None  # nearest single-s flops below the target, when off target
    above: int | None = None  # nearest single-s flops above the target, when off target

    @cached_property
    def spec(self) -> StageSpec:
        """The scaled network, an ordinary validated StageSpec (built on first use)."""
        return self.base.replace(**self.changes)

    def spec_dict(self) -> dict:
        """The spec's fields (as `StageSpec.to_dict()`), cheaply, without validation."""
        return {**self.base.to_dict(), **{k: _plain(v) for k, v in self.changes.items()}}

    @property
    def scaled_down(self) -> bool:
        return self.target < self.base_flops

    @property
    def alpha(self) -> float | None:
        return self.strategy.alpha

    def to_dict(self) -> dict:
        """JSON-friendly summary (the spec as its dict)."""
        return {
            "strategy": self.strategy.name,
            "alpha": self.alpha,
            "target": int(self.target),
            "s": float(self.s),
            "factor": float(self.factor),
            "flops": int(self.flops),
            "params": int(self.params),
            "acts": int(self.acts),
            "depth_factor": float(self.depth_factor),
            "width_factor": float(self.width_factor),
            "group_width_factor": float(self.group_width_factor),
            "resolution_factor": float(self.resolution_factor),
            "on_target": bool(self.on_target),
            "miss": float(self.miss),
            "tolerance": float(self.tolerance),
            "scaled_down": self.scaled_down,
            "finetuned": dict(self.finetuned),
            "below": self.below,
            "above": self.above,
            "spec": self.spec_dict(),
        }


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def _check_target(target, tolerance):
    target = check_positive(target, "target (flops)", SolveError)
    if not (0 <= float(tolerance) < 1):  # NaN fails too
        raise SolveError(f"tolerance must be in [0, 1), got {tolerance!r}")
    return int(round(target)), float(tolerance)


def _check_range(base_flops: int, target: int) -> None:
    if max(base_flops, target) * 4 >= INT64_SAFE:  # candidates reach a few times the target
        raise SolveError(
            f"the planner counts candidates in 64-bit integers: base ({base_flops:.3g} flops) "
            f"and target ({target:.3g}) must stay below {INT64_SAFE / 4:.3g}"
        )
    if not S_RANGE[0] <= target / base_flops <= S_RANGE[1]:
        raise SolveError(
            f"target {target:,} flops is {target / base_flops:.3g} times the base's "
            f"{base_flops:,}; a plan scales by {S_RANGE[0]:g} to {S_RANGE[1]:g} times"
        )


def solve_many(
    spec, strategies, target_flops, tolerance: float = DEFAULT_TOLERANCE, finetune: bool = True
) -> list[Solution]:
    """Solve one target for several strategies at once (batched); one Solution each."""
    target, tol = _check_target(target_flops, tolerance)
    strats = [as_strategy(s) for s in strategies]
    base = spec.stages()
    expo = np.array([s.exponents for s in strats], dtype=np.float64)
    n_strategies = len(strats)
    base_flops = complexity(base).flops
    _check_range(base_flops, target)
    pool = search.CandidatePool(base, expo, base_flops)
    lo, hi = search.bracket(pool, target / base_flops, target)
    ok = ~np.isnan(lo)
    if ok.any():
        owners, s_values = search.breakpoints(base, expo, np.flatnonzero(ok), lo[ok], hi[ok])
        if len(owners):
            pool.eval(owners, s_values)
    flat = pool.flat()
    f, owner = flat["flops"], flat["strategy"]
    miss = np.abs(f / target - 1)
    best = search.best_per_owner
    single = best(owner, [miss, flat["s"]], n_strategies)
    below = best(owner, [np.where(f <= target, -f, 1), flat["s"]], n_strategies)
    above = best(owner, [np.where(f >= target, f, np.iinfo(np.int64).max), flat["s"]], n_strategies)
    below = np.where((below >= 0) & (f[below] <= target), below, -1)
    above = np.where((above >= 0) & (f[above] >= target), above, -1)
    chosen = {}
    off = [k for k in range(n_strategies) if miss[single[k]] > tol * search.ON_TARGET_SLACK]
    if finetune and off:
        refs = [int(i) for k in off for i in (below[k], above[k]) if i >= 0]
        chosen = search.finetune(pool, flat, refs, target, tol)
        flat = pool.flat()
    edges = (single, below, above)
    return [
        _solution(
            pool, flat, strats[k], k, chosen.get(k, single[k]), target, tol, base_flops, edges
        )
        for k in range(n_strategies)
    ]


def _finetuned(pool, flat, i: int, single_i: int, target: int) -> dict:
    """What the fine-tune changed for flat candidate i (empty when it is unadjusted)."""
    if flat["tier"][i] == 0:
        return {}
    r = int(flat["reference"][i])
    knobs = {
        "width_scale": float(flat["width_scale"][i]),
        "group_scale": float(flat["group_scale"][i]),
        "resolution_steps": int(flat["resolution_steps"][i]),
    }
    finetuned = {
        key: v for key, v in knobs.items() if v != (0 if key == "resolution_steps" else 1.0)
    }
    if flat["depth_combo"][i]:
        finetuned["depth_steps"] = pool.combos[flat["depth_combo"][i]].tolist()
    for col in search.FACTOR_COLUMNS:
        finetuned[f"{col.removesuffix('_factor')}_change"] = float(flat[col][i] / flat[col][r])
    finetuned["unadjusted_flops"] = int(flat["flops"][r])
    finetuned["unadjusted_miss"] = float(flat["flops"][r] / target - 1)
    finetuned["single_s_miss"] = float(flat["flops"][single_i] / target - 1)
    return finetuned


def _solution(pool, flat, strat, k, i, target, tol, base_flops, edges) -> Solution:
    single, below, above = edges
    f = int(flat["flops"][i])
    miss = f / target - 1
    on = abs(miss) <= tol * search.ON_TARGET_SLACK
    nearest = {}
    if not on:
        for name, idx in (("below", below[k]), ("above", above[k])):
            nearest[name] = int(flat["flops"][idx]) if idx >= 0 else None
    return Solution(
        strategy=strat,
        target=target,
        base=pool.base,
        changes=pool.changes(flat, i),
        s=float(flat["s"][i]),
        factor=f / base_flops,
        flops=f,
        params=int(flat["params"][i]),
        acts=int(flat["acts"][i]),
        **{col: float(flat[col][i]) for col in search.FACTOR_COLUMNS},
        on_target=bool(on),
        miss=float(miss),
        tolerance=tol,
        base_flops=base_flops,
        finetuned=_finetuned(pool, flat, i, single[k], target),
        **nearest,
    )


def solve(
    spec, strategy, target_flops, tolerance: float = DEFAULT_TOLERANCE, finetune: bool = True
) -> Solution:
    """The network `strategy` reaches closest to `target_flops` (see module doc)."""
    return solve_many(spec, [strategy], target_flops, tolerance, finetune)[0]
