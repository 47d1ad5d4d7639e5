"""Target solving: the scaled network whose flops land closest to a target.

flops(s) is a step function of s: every rounding rule of §6 (per-stage depth, width, group
width, resolution) changes value at known s, the breakpoints ((m + ½)/v)^(1/e). The solver

1. brackets the target on a coarse log grid of s (extending it when the target lies beyond);
2. enumerates EVERY breakpoint inside the bracket and evaluates one s per step between them,
   so no level of the step function is missed and the closest single-s network is exact;
3. only when no single s lands within tolerance, fine-tunes within the strategy's spirit:
   the continuous width factor by up to ±5 %, then the group width among neighbouring
   compatible values, then the resolution by up to ±4 steps of 4 px, then the depth by ±1
   block in one or two stages (tiny networks, where one width step of 8 channels moves
   flops by 20 %), and last the width by up to ±25 % with the group width and depth knobs
   (tiny resolutions, where one 4 px step can triple the flops), picking the smallest realised change that lands; what
   changed and by how much is reported. A target no candidate reaches is reported off target, with the
   nearest networks below and above it.

All strategies of a plan are solved together: each phase is one batched evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from planner.batch import batch_complexity, scale_arrays
from planner.scale import S_RANGE, as_strategy, realised_factor_arrays
from planner.strategies import Strategy
from spaces.complexity import INT64_SAFE, complexity
from spaces.errors import FastscaleError
from spaces.specs import StageSpec
from spaces.validate import check_positive

DEFAULT_TOLERANCE = 0.01
GRID_STEP = 0.05  # coarse grid: s grows by e^0.05 per point ...
GRID_POINTS = 5  # ... over 5 points, then moves with a doubling step
MAX_EXTEND = 16
LOG_S_LIMIT = math.log(S_RANGE[1])  # s stays within S_RANGE: beyond, counts could overflow
WIDTH_STEPS = 0.0025 * np.arange(1, 21)  # fine-tune: width ±0.25 % ... ±5 %
GROUP_STEPS = 0.05 * np.arange(1, 6)  # group-width factor ±5 % ... ±25 % (log)
RES_STEPS = np.arange(1, 5)  # resolution ±1 ... ±4 steps of 4 px
WIDE_STEPS = 0.025 * np.arange(3, 11)  # last resort: width ±7.5 % ... ±25 %


def depth_combos(stages: int) -> np.ndarray:
    """Per-stage depth changes of the depth fine-tune: row 0 none, then ±1 block in one stage,
    then ±1 in each of two stages — (C, stages) int64, smallest changes first."""
    rows = [np.zeros(stages, np.int64)]
    for i in range(stages):
        for d in (1, -1):
            row = np.zeros(stages, np.int64)
            row[i] = d
            rows.append(row)
    for i in range(stages):
        for j in range(i + 1, stages):
            for di in (1, -1):
                for dj in (1, -1):
                    row = np.zeros(stages, np.int64)
                    row[i], row[j] = di, dj
                    rows.append(row)
    return np.array(rows)


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


def _quantities(base: StageSpec):
    """(value, exponent index) of every rounded quantity: it changes where value·s^e = m + ½."""
    q = [(float(d), 0) for d in base.depths] + [(w / 8, 1) for w in base.widths]
    q.append((base.resolution / 4, 3))
    if base.kind.scales_stem_head:
        q += [(base.stem_width / 8, 1)] + ([(base.head_width / 8, 1)] if base.head_width else [])
    if base.kind.grouped:
        q += [(float(g), 2) for g in base.group_widths]
    return q


def _breakpoints(base, expo, k, lo, hi):
    """One s inside every step of flops(s) in (lo, hi), per owner k (vectorized): the
    geometric midpoints between consecutive breakpoints."""
    ks, ss = [k, k], [lo, hi]
    for value, j in _quantities(base):
        e = expo[k, j]
        live = e > 0
        ee = np.where(live, e, 1.0)
        m0 = np.maximum(np.ceil(value * lo**ee - 0.5), 0)
        m1 = np.floor(value * hi**ee - 0.5)
        n = np.where(live, np.maximum(m1 - m0 + 1, 0), 0).astype(np.int64)
        if not n.sum():
            continue
        owner = np.repeat(np.arange(len(k)), n)
        m = m0[owner] + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        ks.append(k[owner])
        ss.append(np.exp((np.log(m + 0.5) - math.log(value)) / ee[owner]))
    ks, ss = np.concatenate(ks), np.concatenate(ss)
    order = np.lexsort((ss, ks))
    ks, ss = ks[order], ss[order]
    step = (ks[1:] == ks[:-1]) & (ss[1:] > ss[:-1] * (1 + 1e-9))
    return ks[1:][step], np.sqrt(ss[1:][step] * ss[:-1][step])


def _bracket(pool, nk: int, t: float, target: int):
    """Per strategy, a small log grid of s around a probed guess, moved (with a doubling step)
    until it straddles the target; returns the (lo, hi) s window holding every crossing of
    the target on the grid (NaN where none was found)."""
    lo = np.full(nk, np.nan)
    hi = np.full(nk, np.nan)
    probe = pool.eval(np.arange(nk), np.full(nk, t))["flops"] / pool.base_flops
    # flops(s) ≈ s·(realised / nominal): correct the guess by the probe's drift
    left = np.log(t * t / np.maximum(probe, 1e-12)) - 2 * GRID_STEP
    step = np.full(nk, GRID_STEP)
    n = GRID_POINTS
    todo = np.arange(nk)
    for _ in range(MAX_EXTEND):
        u = left[todo, None] + step[todo, None] * np.arange(n)
        part = pool.eval(np.repeat(todo, n), np.exp(np.clip(u, -LOG_S_LIMIT, LOG_S_LIMIT)).ravel())
        f = part["flops"].reshape(len(todo), n)
        s = part["s"].reshape(len(todo), n)
        above, below = f >= target, f <= target
        has_a, has_b = above.any(1), below.any(1)
        first_a = np.where(has_a, above.argmax(1), n)
        last_b = np.where(has_b, n - 1 - below[:, ::-1].argmax(1), -1)
        ok = has_a & has_b & (first_a > 0) & (last_b < n - 1)
        rows = np.flatnonzero(ok)
        lo[todo[ok]] = s[rows, first_a[ok] - 1]
        hi[todo[ok]] = s[rows, last_b[ok] + 1]
        up = todo[~ok & (~has_a | (last_b == n - 1))]  # the target lies beyond the top
        down = todo[~ok & ~(~has_a | (last_b == n - 1))]
        left[up] += step[up] * (n - 1)
        step[~np.isin(np.arange(nk), todo[ok])] *= 2
        left[down] -= step[down] * (n - 1)
        todo = todo[~ok]
        if not len(todo):
            break
    return lo, hi


class _Pool:
    """Every evaluated candidate of every strategy, in batched parts, addressable by a flat index."""

    def __init__(self, base: StageSpec, expo: np.ndarray, base_flops: int):
        self.base, self.expo, self.base_flops = base, expo, base_flops
        self.parts: list[dict] = []
        self.combos = depth_combos(len(base.depths))

    def eval(self, k, s, ws=1.0, gs=1.0, rs=0, tier=0, ref=None, ds=0) -> dict:
        """Candidates of strategies k at flop factors s with fine-tune knobs; `ds` indexes
        the per-stage depth changes of `depth_combos` (0: none)."""
        k = np.asarray(k, np.int64)
        s, ws, gs, rs, ds = (np.broadcast_to(np.asarray(x), k.shape) for x in (s, ws, gs, rs, ds))
        e = self.expo[k]
        f = [np.power(s, e[:, i]) for i in range(4)]
        c = scale_arrays(
            self.base, *f, width_scale=ws, group_scale=gs, resolution_steps=rs,
            depth_steps=self.combos[ds],
        )  # fmt: skip
        flops, params, acts = batch_complexity(self.base, c)
        rf = realised_factor_arrays(self.base, c)
        part = {"k": k, "s": s, "ws": ws, "gs": gs, "rs": rs, "ds": ds, "flops": flops}
        part["params"] = params
        part.update(acts=acts, fd=rf[0], fw=rf[1], fg=rf[2], fr=rf[3], cand=c)
        part.update(tier=np.full(k.shape, tier), ref=np.full(k.shape, -1) if ref is None else ref)
        self.parts.append(part)
        return part

    def flat(self) -> dict:
        keys = [k for k in self.parts[0] if k != "cand"]
        out = {key: np.concatenate([p[key] for p in self.parts]) for key in keys}
        out["part"] = np.concatenate([np.full(len(p["k"]), i) for i, p in enumerate(self.parts)])
        out["row"] = np.concatenate([np.arange(len(p["k"])) for p in self.parts])
        return out

    def changes(self, flat: dict, i: int) -> dict:
        return self.parts[flat["part"][i]]["cand"].fields(int(flat["row"][i]))


def _best(owner, keys, nk) -> np.ndarray:
    """Flat index of the lexicographically smallest `keys` row per owner (-1 when none)."""
    order = np.lexsort(tuple(reversed(keys)) + (owner,))
    first = np.ones(len(order), bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    out = np.full(nk, -1, np.int64)
    out[owner[order[first]]] = order[first]
    return out


def _four(grid: tuple) -> tuple:
    """A fine-tune grid (widths, groups, resolution steps[, depth combos]) as four axes."""
    return tuple(grid) if len(grid) == 4 else (*grid, [0])


def _finetune(pool: _Pool, flat: dict, refs: list[int], target: int, tol: float) -> dict:
    """Fine-tune around the unadjusted candidates `refs` (flat indices) tier by tier; returns
    {owner: flat index} of the smallest realised change that lands within tolerance."""
    w = np.concatenate([[1.0], 1 + WIDTH_STEPS, 1 - WIDTH_STEPS])
    g = np.exp(np.concatenate([GROUP_STEPS, -GROUP_STEPS]))
    r = np.concatenate([RES_STEPS, -RES_STEPS])
    coarse = w[::4]  # 1, ±1 %, ..., ±5 %: companions of the group and resolution knobs
    grouped = pool.base.kind.grouped  # depthwise or one-group blocks have no group knob
    tiers = [[(w[1:], [1.0], [0])]]  # width alone
    tiers.append([(coarse, [1.0], r)] + ([(coarse, g, [0])] if grouped else []))  # + g or r
    if grouped:
        tiers.append([(coarse[::2], g, r)])  # all three
    # then depth: ±1 block in one or two stages, with the width or resolution knob
    combos = np.arange(1, len(pool.combos))
    tiers.append([(coarse, [1.0], [0], combos), (coarse[::2], [1.0], r, combos)])
    # last resort, where the width and resolution quanta leave a gap of tens of percent
    # (tiny networks at tiny resolutions): width by up to ±25 %, with or without depth
    wide = np.concatenate([1 + WIDE_STEPS, 1 - WIDE_STEPS])
    groups = np.concatenate([[1.0], g]) if grouped else [1.0]
    tiers.append([(wide, groups, [0], np.arange(len(pool.combos)))])
    chosen: dict[int, int] = {}
    todo = np.asarray(refs, np.int64)
    for tier, grids in enumerate(tiers, start=1):
        if not len(todo):
            break
        grid = np.concatenate(
            [np.array(np.meshgrid(*_four(g), indexing="ij")).reshape(4, -1) for g in grids],
            axis=1,
        )
        ref = np.repeat(todo, grid.shape[1])
        reps = (len(todo), 1)
        ws_, gs_, rs_, ds_ = (np.tile(x, reps).ravel() for x in grid)
        start = sum(len(p["k"]) for p in pool.parts)
        part = pool.eval(
            flat["k"][ref], flat["s"][ref], ws_, gs_, rs_.astype(np.int64), tier, ref,
            ds_.astype(np.int64),
        )  # fmt: skip
        miss = np.abs(part["flops"] / target - 1)
        cost = sum(np.abs(np.log(part[f] / flat[f][ref])) for f in ("fd", "fw", "fg", "fr"))
        ok = miss <= tol * (1 + 1e-12)
        # a strategy that never scales resolution (w, dw, d) never fine-tunes it either
        ok &= (part["rs"] == 0) | (pool.expo[part["k"], 3] != 0)
        if ok.any():
            owner = part["k"][ok]
            steps = np.abs(pool.combos[part["ds"]]).sum(1)
            nominal = np.abs(np.log(part["ws"] * part["gs"])) + np.abs(part["rs"]) + steps
            keys = [np.round(cost[ok], 12), np.round(miss[ok], 12), nominal[ok]]
            best = _best(owner, keys, len(pool.expo))
            for k in np.flatnonzero(best >= 0):
                chosen[int(k)] = start + int(np.flatnonzero(ok)[best[k]])
        todo = np.array([i for i in todo if int(flat["k"][i]) not in chosen], np.int64)
    return chosen


def solve_many(
    spec, strategies, target_flops, tolerance: float = DEFAULT_TOLERANCE, finetune: bool = True
) -> list[Solution]:
    """Solve one target for several strategies at once (batched); one Solution each."""
    target, tol = _check_target(target_flops, tolerance)
    strats = [as_strategy(s) for s in strategies]
    base = spec.stages()
    expo = np.array([s.exponents for s in strats], dtype=np.float64)
    nk = len(strats)
    base_flops = complexity(base).flops
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
    pool = _Pool(base, expo, base_flops)
    lo, hi = _bracket(pool, nk, target / base_flops, target)
    ok = ~np.isnan(lo)
    if ok.any():
        k = np.flatnonzero(ok)
        kb, sb = _breakpoints(base, expo, k, lo[ok], hi[ok])
        if len(kb):
            pool.eval(kb, sb)
    flat = pool.flat()
    f = flat["flops"]
    miss = np.abs(f / target - 1)
    single = _best(flat["k"], [miss, flat["s"]], nk)
    below = _best(flat["k"], [np.where(f <= target, -f, 1), flat["s"]], nk)
    above = _best(flat["k"], [np.where(f >= target, f, np.iinfo(np.int64).max), flat["s"]], nk)
    below = np.where((below >= 0) & (f[below] <= target), below, -1)
    above = np.where((above >= 0) & (f[above] >= target), above, -1)
    chosen = {}
    off = [k for k in range(nk) if miss[single[k]] > tol * (1 + 1e-12)]
    if finetune and off:
        refs = [int(i) for k in off for i in (below[k], above[k]) if i >= 0]
        chosen = _finetune(pool, flat, refs, target, tol)
        flat = pool.flat()
    edges = (single, below, above)
    return [
        _solution(
            pool, flat, strats[k], k, chosen.get(k, single[k]), target, tol, base_flops, edges
        )
        for k in range(nk)
    ]


def _solution(pool, flat, strat, k, i, target, tol, base_flops, edges) -> Solution:
    single, below, above = edges
    f = int(flat["flops"][i])
    miss = f / target - 1
    on = abs(miss) <= tol * (1 + 1e-12)
    finetuned = {}
    if flat["tier"][i] > 0:
        r = int(flat["ref"][i])
        knobs = {"width_scale": float(flat["ws"][i]), "group_scale": float(flat["gs"][i])}
        knobs["resolution_steps"] = int(flat["rs"][i])
        finetuned = {
            key: v for key, v in knobs.items() if v != (0 if key == "resolution_steps" else 1.0)
        }
        if flat["ds"][i]:
            finetuned["depth_steps"] = pool.combos[flat["ds"][i]].tolist()
        cols = (("depth", "fd"), ("width", "fw"), ("group_width", "fg"), ("resolution", "fr"))
        for name, col in cols:
            finetuned[f"{name}_change"] = float(flat[col][i] / flat[col][r])
        finetuned["unadjusted_flops"] = int(flat["flops"][r])
        finetuned["unadjusted_miss"] = float(flat["flops"][r] / target - 1)
        finetuned["single_s_miss"] = float(flat["flops"][single[k]] / target - 1)
    edges = {}
    if not on:
        for name, idx in (("below", below[k]), ("above", above[k])):
            edges[name] = int(flat["flops"][idx]) if idx >= 0 else None
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
        depth_factor=float(flat["fd"][i]),
        width_factor=float(flat["fw"][i]),
        group_width_factor=float(flat["fg"][i]),
        resolution_factor=float(flat["fr"][i]),
        on_target=bool(on),
        miss=float(miss),
        tolerance=tol,
        base_flops=base_flops,
        finetuned=finetuned,
        **edges,
    )


def solve(
    spec, strategy, target_flops, tolerance: float = DEFAULT_TOLERANCE, finetune: bool = True
) -> Solution:
    """The network `strategy` reaches closest to `target_flops` (see module doc)."""
    return solve_many(spec, [strategy], target_flops, tolerance, finetune)[0]
