"""The batched search behind `planner.solve`: bracket, breakpoints and fine-tune tiers.

Every candidate of every strategy lives in one `CandidatePool` of numpy columns (the
strategy index, the flop factor s, the fine-tune knobs, the counts and the realised
factors), so each phase of the search is one batched evaluation over all strategies.
`planner.solve` turns the chosen rows into `Solution`s; its docstring says what the phases
do and why.
"""

from __future__ import annotations

import math

import numpy as np

from planner.batch import batch_complexity, scale_arrays
from planner.scale import S_RANGE, realised_factor_arrays
from spaces.specs import StageSpec

GRID_STEP = 0.05  # coarse grid: s grows by e^0.05 per point ...
GRID_POINTS = 5  # ... over 5 points, then moves with a doubling step
MAX_EXTEND = 16
LOG_S_LIMIT = math.log(S_RANGE[1])  # s stays within S_RANGE: beyond, counts could overflow
WIDTH_STEPS = 0.0025 * np.arange(1, 21)  # fine-tune: width ±0.25 % ... ±5 %
GROUP_STEPS = 0.05 * np.arange(1, 6)  # group-width factor ±5 % ... ±25 % (log)
RES_STEPS = np.arange(1, 5)  # resolution ±1 ... ±4 steps of 4 px
WIDE_STEPS = 0.025 * np.arange(3, 11)  # last resort: width ±7.5 % ... ±25 %
# The realised-factor columns of the pool (planner.scale.Factors, in its order).
FACTOR_COLUMNS = ("depth_factor", "width_factor", "group_width_factor", "resolution_factor")
# Within this relative slack a candidate counts as on target (float noise, not a rule).
ON_TARGET_SLACK = 1 + 1e-12


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


def _quantities(base: StageSpec):
    """(value, exponent index) of every rounded quantity: it changes where value·s^e = m + ½."""
    q = [(float(d), 0) for d in base.depths] + [(w / 8, 1) for w in base.widths]
    q.append((base.resolution / 4, 3))
    if base.kind.scales_stem_head:
        q += [(base.stem_width / 8, 1)] + ([(base.head_width / 8, 1)] if base.head_width else [])
    if base.kind.grouped:
        q += [(float(g), 2) for g in base.group_widths]
    return q


def breakpoints(base, expo, strategies, lo, hi):
    """One s inside every step of flops(s) in (lo, hi), per strategy index (vectorized): the
    geometric midpoints between consecutive breakpoints. Returns (strategy indices, s)."""
    owners, s_values = [strategies, strategies], [lo, hi]
    for value, j in _quantities(base):
        e = expo[strategies, j]
        live = e > 0
        ee = np.where(live, e, 1.0)
        m0 = np.maximum(np.ceil(value * lo**ee - 0.5), 0)
        m1 = np.floor(value * hi**ee - 0.5)
        n = np.where(live, np.maximum(m1 - m0 + 1, 0), 0).astype(np.int64)
        if not n.sum():
            continue
        owner = np.repeat(np.arange(len(strategies)), n)
        m = m0[owner] + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        owners.append(strategies[owner])
        s_values.append(np.exp((np.log(m + 0.5) - math.log(value)) / ee[owner]))
    owners, s_values = np.concatenate(owners), np.concatenate(s_values)
    order = np.lexsort((s_values, owners))
    owners, s_values = owners[order], s_values[order]
    step = (owners[1:] == owners[:-1]) & (s_values[1:] > s_values[:-1] * (1 + 1e-9))
    return owners[1:][step], np.sqrt(s_values[1:][step] * s_values[:-1][step])


def bracket(pool: CandidatePool, s_guess: float, target: int):
    """Per strategy, a small log grid of s around a probed guess, moved (with a doubling step)
    until it straddles the target; returns the (lo, hi) s window holding every crossing of
    the target on the grid (NaN where none was found)."""
    n_strategies = pool.n_strategies
    lo = np.full(n_strategies, np.nan)
    hi = np.full(n_strategies, np.nan)
    everyone = np.arange(n_strategies)
    probe = pool.eval(everyone, np.full(n_strategies, s_guess))["flops"] / pool.base_flops
    # flops(s) ≈ s·(realised / nominal): correct the guess by the probe's drift
    left = np.log(s_guess * s_guess / np.maximum(probe, 1e-12)) - 2 * GRID_STEP
    step = np.full(n_strategies, GRID_STEP)
    n = GRID_POINTS
    todo = everyone
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
        step[~np.isin(everyone, todo[ok])] *= 2
        left[down] -= step[down] * (n - 1)
        todo = todo[~ok]
        if not len(todo):
            break
    return lo, hi


class CandidatePool:
    """Every evaluated candidate of every strategy, in batched parts, addressable by a flat
    index. `expo` holds one row of (depth, width, group width, resolution) exponents per
    strategy; a candidate's `strategy` column indexes it."""

    def __init__(self, base: StageSpec, expo: np.ndarray, base_flops: int):
        self.base, self.expo, self.base_flops = base, expo, base_flops
        self.parts: list[dict] = []
        self.combos = depth_combos(len(base.depths))

    @property
    def n_strategies(self) -> int:
        return len(self.expo)

    def eval(
        self, strategy, s, width_scale=1.0, group_scale=1.0, resolution_steps=0, tier=0,
        reference=None, depth_combo=0,
    ) -> dict:  # fmt: skip
        """Candidates of strategies `strategy` at flop factors s with fine-tune knobs;
        `depth_combo` indexes the per-stage depth changes of `depth_combos` (0: none), and
        `reference` is the flat index of the unadjusted candidate a fine-tuned one came from."""
        strategy = np.asarray(strategy, np.int64)
        knobs = (s, width_scale, group_scale, resolution_steps, depth_combo)
        s, width_scale, group_scale, resolution_steps, depth_combo = (
            np.broadcast_to(np.asarray(x), strategy.shape) for x in knobs
        )
        e = self.expo[strategy]
        factors = [np.power(s, e[:, i]) for i in range(4)]
        candidates = scale_arrays(
            self.base, *factors, width_scale=width_scale, group_scale=group_scale,
            resolution_steps=resolution_steps, depth_steps=self.combos[depth_combo],
        )  # fmt: skip
        flops, params, acts = batch_complexity(self.base, candidates)
        part = {"strategy": strategy, "s": s, "width_scale": width_scale}
        part.update(group_scale=group_scale, resolution_steps=resolution_steps)
        part.update(depth_combo=depth_combo, flops=flops, params=params, acts=acts)
        part.update(zip(FACTOR_COLUMNS, realised_factor_arrays(self.base, candidates), strict=True))
        part.update(candidates=candidates, tier=np.full(strategy.shape, tier))
        part["reference"] = np.full(strategy.shape, -1) if reference is None else reference
        self.parts.append(part)
        return part

    def size(self) -> int:
        return sum(len(p["strategy"]) for p in self.parts)

    def flat(self) -> dict:
        keys = [k for k in self.parts[0] if k != "candidates"]
        out = {key: np.concatenate([p[key] for p in self.parts]) for key in keys}
        out["part"] = np.concatenate(
            [np.full(len(p["strategy"]), i) for i, p in enumerate(self.parts)]
        )
        out["row"] = np.concatenate([np.arange(len(p["strategy"])) for p in self.parts])
        return out

    def changes(self, flat: dict, i: int) -> dict:
        """The scaled StageSpec fields of flat candidate i."""
        return self.parts[flat["part"][i]]["candidates"].fields(int(flat["row"][i]))


def best_per_owner(owner, keys, n_owners) -> np.ndarray:
    """Flat index of the lexicographically smallest `keys` row per owner (-1 when none)."""
    order = np.lexsort(tuple(reversed(keys)) + (owner,))
    first = np.ones(len(order), bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    out = np.full(n_owners, -1, np.int64)
    out[owner[order[first]]] = order[first]
    return out


def _four_axes(grid: tuple) -> tuple:
    """A fine-tune grid (widths, groups, resolution steps[, depth combos]) as four axes."""
    return tuple(grid) if len(grid) == 4 else (*grid, [0])


def _finetune_tiers(pool: CandidatePool) -> list[list[tuple]]:
    """The fine-tune grids, gentlest tier first: each a list of (width scales, group scales,
    resolution steps[, depth combos]) grids tried together."""
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
    return tiers


def finetune(pool: CandidatePool, flat: dict, refs: list[int], target: int, tol: float) -> dict:
    """Fine-tune around the unadjusted candidates `refs` (flat indices) tier by tier; returns
    {strategy index: flat index} of the smallest realised change that lands within tolerance."""
    chosen: dict[int, int] = {}
    todo = np.asarray(refs, np.int64)
    for tier, grids in enumerate(_finetune_tiers(pool), start=1):
        if not len(todo):
            break
        grid = np.concatenate(
            [np.array(np.meshgrid(*_four_axes(g), indexing="ij")).reshape(4, -1) for g in grids],
            axis=1,
        )
        ref = np.repeat(todo, grid.shape[1])
        reps = (len(todo), 1)
        width_scale, group_scale, resolution_steps, depth_combo = (
            np.tile(x, reps).ravel() for x in grid
        )
        start = pool.size()
        part = pool.eval(
            flat["strategy"][ref], flat["s"][ref], width_scale, group_scale,
            resolution_steps.astype(np.int64), tier, ref, depth_combo.astype(np.int64),
        )  # fmt: skip
        miss = np.abs(part["flops"] / target - 1)
        cost = sum(np.abs(np.log(part[f] / flat[f][ref])) for f in FACTOR_COLUMNS)
        ok = miss <= tol * ON_TARGET_SLACK
        # a strategy that never scales resolution (w, dw, d) never fine-tunes it either
        ok &= (part["resolution_steps"] == 0) | (pool.expo[part["strategy"], 3] != 0)
        if ok.any():
            owner = part["strategy"][ok]
            steps = np.abs(pool.combos[part["depth_combo"]]).sum(1)
            nominal = np.abs(np.log(part["width_scale"] * part["group_scale"]))
            nominal = nominal + np.abs(part["resolution_steps"]) + steps
            keys = [np.round(cost[ok], 12), np.round(miss[ok], 12), nominal[ok]]
            best = best_per_owner(owner, keys, pool.n_strategies)
            for k in np.flatnonzero(best >= 0):
                chosen[int(k)] = start + int(np.flatnonzero(ok)[best[k]])
        todo = np.array([i for i in todo if int(flat["strategy"][i]) not in chosen], np.int64)
    return chosen
