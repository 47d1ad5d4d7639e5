"""RegNet generation (the RegNet paper's quantized linear rule; docs/models.md): quantized
linear widths, stage merging, compatibility.

Each rule is written once with numpy ufuncs so it works on a scalar config and on a batch
of configs alike; the scalar path (`RegNetSpec.stages`) and the vectorized sampler both call
these functions. A leaf: numpy only, no specs.
"""

from __future__ import annotations

import numpy as np

Q = 8  # width quantum: generated widths, and the planner's rounded ones, are multiples of it


def quantized_widths(depth, w0, wa, wm, q: int = Q, max_depth: int | None = None):
    """Per-block widths of the quantized linear rule, for broadcastable parameter arrays.

    Returns (widths, ks, active): arrays of shape (..., D), D = max_depth or max(depth);
    `active` marks the blocks that exist (j < depth).
    """
    depth = np.asarray(depth, dtype=np.int64)[..., None]
    w0 = np.asarray(w0, dtype=np.float64)[..., None]
    wa = np.asarray(wa, dtype=np.float64)[..., None]
    wm = np.asarray(wm, dtype=np.float64)[..., None]
    j = np.arange(int(max_depth or depth.max()))
    u = w0 + wa * j
    ks = np.round(np.log(u / w0) / np.log(wm)).astype(np.int64)
    # the rule's width for each stage index k once, then gathered per block (same arithmetic)
    k_all = np.arange(int(ks.max()) + 1 if ks.size else 1, dtype=np.float64)
    per_k = (np.round(w0 * np.power(wm, k_all) / q) * q).astype(np.int64)
    widths = np.take_along_axis(np.broadcast_to(per_k, ks.shape[:-1] + per_k.shape[-1:]), ks, -1)
    return widths, ks, j < depth


def compat(widths, bottlenecks, group_widths):
    """Group/bottleneck compatibility (§3), elementwise: returns (widths, group_widths)."""
    w = np.asarray(widths, dtype=np.float64)
    b = np.asarray(bottlenecks, dtype=np.float64)
    v = np.maximum(1, w * b).astype(np.int64)
    g = np.minimum(np.asarray(group_widths, dtype=np.int64), v)
    m = np.where(b > 1, np.lcm(g, b.astype(np.int64)), g) if (b > 1).any() else g
    v = np.maximum(m, (np.round(v / m) * m).astype(np.int64))
    return (v / b).astype(np.int64), g


def round_group_width(g):
    """Group-width rounding of §6: keep if <= 2, 4 if <= 5, else the nearest multiple of 8."""
    g = np.maximum(1, np.round(np.asarray(g, dtype=np.float64)))
    return np.where(g <= 2, g, np.where(g <= 5, 4, np.round(g / 8) * 8)).astype(np.int64)
