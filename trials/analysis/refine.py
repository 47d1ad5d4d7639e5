"""Error-vs-parameter trends and a refined design space, as the RegNet paper refines AnyNetX
A→E (Radosavovic et al. 2020, §3.2-3.3): read each design parameter's values among the good
models (the top q of a population) and narrow the space to the ranges that keep most of them
while dropping many of the others. The result is a design-space file (spaces.space_file)
that `sample` and `study run --space` accept. Pure numpy. See docs/analysis.md.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spaces.sampler import SPACES, DesignSpace, Range
from spaces.space_file import RANGE_KEYS, space_to_dict

BLOCK_SPACES = {block: name for name, (block, _) in SPACES.items()}  # X -> regnetx, ...
TAILS = (0.10, 0.075, 0.05, 0.025, 0.01, 0.0)  # tried from narrowest to widest


def good_mask(errors: np.ndarray, q: float) -> np.ndarray:
    """The good models: the best ceil(q n) of them (at least one)."""
    k = max(1, math.ceil(q * len(errors)))
    order = np.argsort(errors, kind="stable")
    mask = np.zeros(len(errors), bool)
    mask[order[:k]] = True
    return mask


def trends(values: dict, errors: np.ndarray, q: float, level: float = 0.9) -> dict:
    """Per parameter: the values, the errors, the good mask and the good models' empirical
    band (the central `level` of their values)."""
    good = good_mask(errors, q)
    tail = (1 - level) / 2
    out = {}
    for name, v in values.items():
        v = np.asarray(v, float)
        lo, hi = np.quantile(v[good], [tail, 1 - tail])
        out[name] = {"band": (float(lo), float(hi)), "good": good, "values": v}
    return out


def _snap(lo: float, hi: float, base: Range) -> Range:
    """[lo, hi] widened outward to the range's step and kept inside it (never empty)."""
    low = max(base.low, math.floor(round(lo / base.step, 9)) * base.step)
    high = min(base.high, math.ceil(round(hi / base.step, 9)) * base.step)
    if high <= low:
        high = min(base.high, low + base.step)
        low = max(base.low, high - base.step)
    return Range(round(low, 6), round(high, 6), log=base.log, step=base.step)


def _inside(values: dict, ranges: dict) -> np.ndarray:
    keep = np.ones(len(next(iter(values.values()))), bool)
    for name, r in ranges.items():
        v = values[name]
        keep &= (v >= r.low - 1e-9) & (v <= r.high + 1e-9)
    return keep


def refine(values: dict, errors, base_name: str, q: float = 0.25, keep: float = 0.8, name=""):
    """The narrowest space (per-parameter tails tried in TAILS) whose ranges hold at least
    `keep` of the good models, with the shares of good and other models it keeps. `values`
    maps RegNet parameters (depth, w0, wa, wm, group_width) to the population's values."""
    base = DesignSpace.named(base_name)
    errors = np.asarray(errors, float)
    values = {k: np.asarray(values[k], float) for k in RANGE_KEYS if k in values}
    good = good_mask(errors, q)
    chosen = None
    for tail in TAILS:
        ranges = {}
        for k, v in values.items():
            lo, hi = np.quantile(v[good], [tail, 1 - tail])
            ranges[k] = _snap(float(lo), float(hi), getattr(base, k))
        inside = _inside(values, ranges)
        chosen = (ranges, inside)
        if inside[good].mean() >= keep:
            break
    ranges, inside = chosen
    space = dataclasses.replace(base, **ranges)
    others = ~good
    return {
        "space": space_to_dict(space, base_name, name or f"{base_name}-refined"),
        "good_kept": float(inside[good].mean()),
        "others_kept": float(inside[others].mean()) if others.any() else float("nan"),
        "good": int(good.sum()),
        "others": int(others.sum()),
    }


def base_space(population) -> str | None:
    """The named RegNet space a population was drawn from (or whose block it uses)."""
    for col in ("base_space", "space"):
        if col in population:
            names = set(population[col].dropna().astype(str).str.lower().unique())
            if len(names) == 1 and next(iter(names)) in SPACES:
                return next(iter(names))
    if "block" in population and "w0" in population:
        blocks = set(population["block"].dropna().unique())
        if len(blocks) == 1 and next(iter(blocks)) in BLOCK_SPACES:
            return BLOCK_SPACES[next(iter(blocks))]
    return None
