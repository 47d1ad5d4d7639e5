"""Scale any spec by a flop factor s with a strategy and the rounding rules of docs/planner.md.

The result is an ordinary `StageSpec`: exact complexity via `spaces.complexity`, buildable
by `spaces.build`, saveable with `spaces.io.save_specs`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from planner.batch import scale_arrays
from planner.strategies import Strategy, get_strategy
from spaces.errors import FastscaleError
from spaces.specs import StageSpec
from spaces.validate import check_positive

# Fine-tune knobs accepted by `scale_spec` (see planner.solve for how they are chosen).
FINETUNE_KNOBS = ("width_scale", "group_scale", "resolution_steps", "depth_steps")


class ScaleError(FastscaleError):
    """A scale factor that is not a positive number, or an unknown fine-tune knob."""


class Factors(NamedTuple):
    """Realised factors of a scaled network relative to its base (after rounding)."""

    depth: float  # total blocks / base total blocks
    width: float  # geometric mean over stages of width / base width
    group_width: float  # geometric mean over stages of group width / base group width
    resolution: float  # resolution / base resolution


def check_factor(s, what: str = "scale factor", error: type[Exception] = ScaleError) -> float:
    """A positive finite number (spaces.validate.check_positive), ScaleError by default."""
    return check_positive(s, what, error)


# The flop factors a plan may ask for: beyond a million-fold the rounded network is either a
# single block of width 8 or a count past 64-bit integers, never a meaningful scaling.
S_RANGE = (1e-6, 1e6)


def check_scale(s) -> float:
    """A flop factor inside S_RANGE, or ScaleError saying so."""
    v = check_factor(s)
    if not S_RANGE[0] <= v <= S_RANGE[1]:
        raise ScaleError(
            f"scale factor must be in [{S_RANGE[0]:g}, {S_RANGE[1]:g}] (flops grow s-fold), "
            f"got {s!r}"
        )
    return v


def as_strategy(strategy: Strategy | str | None) -> Strategy:
    return strategy if isinstance(strategy, Strategy) else get_strategy(strategy)


def scale_spec(spec, strategy: Strategy | str, s: float, **finetune) -> StageSpec:
    """`spec.stages()` scaled by flop factor s: depth max(1, round(d·f_d)), width
    max(1, round(w·f_w/8))·8, group width rounded then made compatible, resolution
    round(r·f_r/4)·4; stem/head widths only where the block table says so (EfficientNet).

    Optional fine-tune knobs (default: none): width_scale, group_scale, resolution_steps,
    depth_steps (blocks added per stage).
    """
    unknown = sorted(set(finetune) - set(FINETUNE_KNOBS))
    if unknown:
        raise ScaleError(f"unknown fine-tune knob(s) {unknown}; allowed: {FINETUNE_KNOBS}")
    base = spec.stages()
    strat = as_strategy(strategy)
    c = scale_arrays(base, *strat.factors(check_scale(s)), **finetune)
    return c.row(base, 0)


def realised_factors(base, scaled) -> Factors:
    """How much depth, width, group width and resolution actually grew (after rounding)."""
    b, t = base.stages(), scaled.stages()
    w = np.exp(np.mean(np.log(np.divide(t.widths, b.widths))))
    g = np.exp(np.mean(np.log(np.divide(t.group_widths, b.group_widths))))
    return Factors(t.depth / b.depth, float(w), float(g), t.resolution / b.resolution)


def realised_factor_arrays(base: StageSpec, c):
    """`realised_factors` for a batch of candidates (arrays)."""
    d = c.depths.sum(1) / sum(base.depths)
    w = np.exp(np.mean(np.log(c.widths / np.asarray(base.widths, float)), axis=1))
    g = np.exp(np.mean(np.log(c.group_widths / np.asarray(base.group_widths, float)), axis=1))
    return Factors(d, w, g, c.resolution / base.resolution)
