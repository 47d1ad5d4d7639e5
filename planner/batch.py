"""Scale one base network into N candidates at once and count them all at once.

The solver evaluates thousands of (strategy, s, fine-tune) candidates per plan. Building a
StageSpec per candidate and walking it block by block would cost milliseconds each, so this
module keeps candidates as stage-level arrays: the rounding rules (docs/planner.md) run as numpy ufuncs
over (N, stages) arrays, and complexity is `spaces.complexity.stages_complexity_batch`, the
vectorized face of `complexity()` (tests check equality).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaces.complexity import stages_complexity_batch
from spaces.generate import Q, compat, round_group_width
from spaces.specs import StageSpec

# Widths round to multiples of Q, the width quantum of RegNet generation (docs/planner.md,
# "Scaling and rounding").
R_STEP = 4  # resolution quantum (same section)
MIN_RESOLUTION = 8


@dataclass(frozen=True)
class Candidates:
    """N scaled networks of one base, as stage-level arrays."""

    depths: np.ndarray  # (N, S) int64
    widths: np.ndarray  # (N, S)
    group_widths: np.ndarray  # (N, S)
    resolution: np.ndarray  # (N,)
    stem_width: np.ndarray  # (N,)
    head_width: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.resolution)

    def fields(self, i: int) -> dict:
        """The StageSpec fields that scaling changes, for candidate i."""
        return {
            "depths": tuple(self.depths[i].tolist()),
            "widths": tuple(self.widths[i].tolist()),
            "group_widths": tuple(self.group_widths[i].tolist()),
            "resolution": int(self.resolution[i]),
            "stem_width": int(self.stem_width[i]),
            "head_width": int(self.head_width[i]),
        }

    def row(self, base: StageSpec, i: int) -> StageSpec:
        """Candidate i as an ordinary StageSpec (validated)."""
        return base.replace(**self.fields(i))


def _round_width(w, f):
    return np.maximum(1, np.round(w * f / Q)).astype(np.int64) * Q


def scale_arrays(
    base: StageSpec,
    depth_factor,
    width_factor,
    group_width_factor,
    resolution_factor,
    width_scale=1.0,
    group_scale=1.0,
    resolution_steps=0,
    depth_steps=0,
) -> Candidates:
    """Apply the rounding rules of docs/planner.md to N sets of factors (each argument broadcasts to (N,)).

    Fine-tune knobs: `width_scale` multiplies the continuous width factor, `group_scale` the
    group-width factor, `resolution_steps` adds steps of 4 px after rounding, `depth_steps`
    (broadcasts to (N, stages)) adds blocks to each stage after rounding (at least 1 stays).
    """
    arrays = np.broadcast_arrays(
        *(
            np.asarray(x, dtype=np.float64)
            for x in (depth_factor, width_factor, group_width_factor, resolution_factor)
        ),
        *(np.asarray(x, dtype=np.float64) for x in (width_scale, group_scale)),
        np.asarray(resolution_steps, dtype=np.int64),
    )
    (depth_factor, width_factor, group_width_factor, resolution_factor, width_scale,
     group_scale, resolution_steps) = (np.atleast_1d(x) for x in arrays)  # fmt: skip
    width_factor = width_factor * width_scale
    d0 = np.asarray(base.depths, dtype=np.float64)
    w0 = np.asarray(base.widths, dtype=np.float64)
    depths = np.maximum(1, np.round(d0 * depth_factor[:, None])).astype(np.int64)
    depths = np.maximum(1, depths + np.asarray(depth_steps, dtype=np.int64))
    widths = _round_width(w0, width_factor[:, None])
    res = np.round(base.resolution * resolution_factor / R_STEP).astype(np.int64) * R_STEP
    res = np.maximum(MIN_RESOLUTION, res + R_STEP * resolution_steps)
    n = len(res)
    kind = base.kind
    if kind.depthwise:  # depthwise stays depthwise
        groups = np.ones_like(widths)
    elif kind.grouped:
        g0 = np.asarray(base.group_widths, dtype=np.float64)
        groups = round_group_width(g0 * (group_width_factor * group_scale)[:, None])
        widths, groups = compat(widths, np.asarray(base.bottlenecks), groups)
    else:  # one group: the group width is the inner width
        inner = np.rint(widths * np.asarray(base.bottlenecks)).astype(np.int64)
        groups = np.maximum(1, inner)
    if kind.scales_stem_head:  # EfficientNet's rule: stem and head widen with the stages
        stem = _round_width(base.stem_width, width_factor)
        head = (
            _round_width(base.head_width, width_factor)
            if base.head_width
            else np.zeros(n, np.int64)
        )
    else:
        stem = np.full(n, base.stem_width, dtype=np.int64)
        head = np.full(n, base.head_width, dtype=np.int64)
    return Candidates(depths, widths, groups, res, stem, head)


_MIX = np.random.default_rng(12345).integers(1, 2**62, 64, dtype=np.int64) | 1


def _unique_rows(keys: np.ndarray):
    """(first index, inverse) of the distinct rows: a wrapping int64 hash sorts fast; rows
    are then compared with their representative, and a collision falls back to exact."""
    with np.errstate(over="ignore"):
        h = keys @ _MIX[: keys.shape[1]]
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if np.array_equal(keys[first][inverse], keys):
        return first, inverse
    rows = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1])))
    _, first, inverse = np.unique(rows.ravel(), return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def batch_complexity(base: StageSpec, c: Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flops, params, acts) int64 arrays of every candidate, equal to `complexity()`.

    Many candidates round to the same network, so each distinct one is counted once.
    """
    keys = np.concatenate(
        [
            c.depths,
            c.widths,
            c.group_widths,
            np.stack([c.resolution, c.stem_width, c.head_width], 1),
        ],
        axis=1,
    )
    first, inverse = _unique_rows(keys)
    if len(first) < 0.8 * len(c):
        sub = Candidates(*(getattr(c, f)[first] for f in Candidates.__dataclass_fields__))
        return tuple(x[inverse] for x in _count(base, sub))
    return _count(base, c)


def _count(base: StageSpec, c: Candidates):
    return stages_complexity_batch(
        base, c.depths, c.widths, c.group_widths, c.resolution, c.stem_width, c.head_width
    )
