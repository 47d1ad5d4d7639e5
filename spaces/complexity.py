"""Exact analytic flops / params / acts without building a model (docs/models.md).

The layer counter (`spaces.layers.Cx`) and the block counters of the block table
(`spaces.blocks`) use only arithmetic and numpy ufuncs, so the same code counts one network
(Python ints) or a batch of networks at once (int64 arrays, one array entry per config).
`complexity` walks a spec's stages in Python ints (exact at any size);
`stages_complexity_batch` counts a batch in int64 and switches a row to Python ints when
a bound says it could pass 2**63. They are tested equal.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spaces.blocks import get_block, get_stem
from spaces.generate import compat, quantized_widths
from spaces.layers import Cx
from spaces.specs import StageSpec


class Complexity(NamedTuple):
    flops: int
    params: int
    acts: int

    def as_dict(self) -> dict:
        return {"flops": int(self.flops), "params": int(self.params), "acts": int(self.acts)}


def block_complexity(block, h, w_in, w_out, stride, g, b, k, se_ratio) -> Cx:
    """One block of any kind (the block table's counter); widths, h, g may be arrays."""
    return get_block(block).count(h, w_in, w_out, stride, g, b, k, se_ratio)


def stem_complexity(resolution, in_channels, stem_width, stem="simple") -> Cx:
    return get_stem(stem).count(resolution, in_channels, stem_width)


def head_complexity(cx: Cx, w_in, head_width, num_classes) -> Cx:
    """Optional 1x1 conv head (head_width 0 = none), pooling, then the classifier."""
    has_conv = head_width > 0
    cx.add(Cx(cx.h).conv(w_in, head_width, 1).bn(head_width), has_conv)
    if isinstance(has_conv, np.ndarray):
        return cx.linear(np.where(has_conv, head_width, w_in), num_classes)
    return cx.linear(head_width if has_conv else w_in, num_classes)  # Python ints stay exact


def _walk(s, depths, widths, groups, resolution, stem_width, head_width) -> Complexity:
    """Exact counts in Python ints (no 64-bit limit) of `s`'s network with these per-stage
    depths (0 = no stage), widths and group widths. A stage repeats one identical block after
    its first, so a stage costs two block counts whatever its depth (10^9 blocks included)."""
    cx = stem_complexity(int(resolution), s.in_channels, int(stem_width), s.stem)
    w_in = int(stem_width)
    for i, depth in enumerate(int(d) for d in depths):
        if depth == 0:
            continue
        w, g, b, k = int(widths[i]), int(groups[i]), s.bottlenecks[i], s.kernels[i]
        first = block_complexity(s.block, cx.h, w_in, w, s.strides[i], g, b, k, s.se_ratio)
        rest = block_complexity(s.block, first.h, w, w, 1, g, b, k, s.se_ratio)
        cx.add(first).add(rest, depth - 1)
        cx.h, w_in = first.h, w
    head_complexity(cx, w_in, int(head_width), s.num_classes)
    return Complexity(int(cx.flops), int(cx.params), int(cx.acts))


def complexity(spec) -> Complexity:
    """Flops, params and acts of any spec (RegNet, stage-level, EfficientNet, ResNet), exact in
    Python ints whatever their size; `stages_complexity_batch` is its vectorized face, tested
    equal."""
    s = spec.stages()
    return _walk(s, s.depths, s.widths, s.group_widths, s.resolution, s.stem_width, s.head_width)


# int64 counts are exact below 2**63; rows whose bound reaches INT64_SAFE are counted in
# Python ints instead (such networks are far beyond anything trained; the bound is loose).
INT64_SAFE = 2.0**62


def _int64_bound(base, depths, widths, resolution, stem_width, head_width) -> np.ndarray:
    """Per row, an upper bound (float64) of flops, params and acts: every block is at most
    four k×k convs of the widest inner width at the input resolution, plus the classifier."""
    inner = widths.max(1) * max(max(base.bottlenecks), 1.0)
    wide = np.maximum.reduce([inner, stem_width.astype(float), head_width.astype(float)])
    wide = np.maximum(wide, base.in_channels)
    k = max(max(base.kernels), 7)
    blocks = depths.sum(1).astype(float) + 4  # + stem convs and head conv
    conv = 4.0 * k * k * wide**2 * resolution.astype(float) ** 2
    return blocks * conv + wide * base.num_classes * 2.0


def stages_complexity_batch(
    base, depths, widths, groups, resolution, stem_width=None, head_width=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flops, params, acts) of N networks that share `base`'s block type, strides, kernels,
    bottlenecks, SE ratio, input channels and classes but have their own (N, S) depths,
    widths, group widths and (N,) resolution, stem and head widths (depth 0 = no stage).

    Walks stages, not blocks: after its first block a stage repeats one identical block
    (d - 1) times, so each stage costs two block counts whatever its depth.
    """
    depths = np.asarray(depths, dtype=np.int64)
    n = depths.shape[0]

    def column(v, default):
        v = default if v is None else v
        return np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy()

    res = column(resolution, base.resolution)
    w_in = column(stem_width, base.stem_width)
    head = column(head_width, base.head_width)
    widths, groups = np.asarray(widths, dtype=np.int64), np.asarray(groups, dtype=np.int64)
    bound = _int64_bound(base, depths, widths, res, w_in, head) if n else np.zeros(0)
    if (bound >= INT64_SAFE).any():
        return _exact_rows(base, depths, widths, groups, res, w_in, head, bound)
    cx = stem_complexity(res, base.in_channels, w_in, base.stem)
    cx.flops, cx.params, cx.acts = (column(v, 0) for v in (cx.flops, cx.params, cx.acts))
    for i in range(depths.shape[1]):
        rows = np.flatnonzero(depths[:, i] > 0)  # late stages exist in few rows: count only those
        w, g = widths[rows, i], groups[rows, i]
        t, b, k = base.strides[i], base.bottlenecks[i], base.kernels[i]
        first = block_complexity(base.block, cx.h[rows], w_in[rows], w, t, g, b, k, base.se_ratio)
        rest = block_complexity(base.block, first.h, w, w, 1, g, b, k, base.se_ratio)
        stage = Cx(0).add(first).add(rest, depths[rows, i] - 1)
        cx.flops[rows] += stage.flops
        cx.params[rows] += stage.params
        cx.acts[rows] += stage.acts
        cx.h[rows], w_in[rows] = first.h, w
    head_complexity(cx, w_in, head, base.num_classes)
    return cx.flops, cx.params, cx.acts


def _exact_rows(base, depths, widths, groups, res, stem, head, bound):
    """stages_complexity_batch where some rows could pass 2**63: those rows in Python ints
    (object arrays: comparisons and arithmetic still work, nothing wraps around)."""
    safe = bound < INT64_SAFE
    out = [np.zeros(len(bound), dtype=object) for _ in range(3)]
    if safe.any():
        rows = np.flatnonzero(safe)
        part = stages_complexity_batch(
            base, depths[rows], widths[rows], groups[rows], res[rows], stem[rows], head[rows]
        )
        for o, p in zip(out, part, strict=True):
            o[rows] = [int(v) for v in p]
    for r in np.flatnonzero(~safe):
        cx = _walk(base, depths[r], widths[r], groups[r], res[r], stem[r], head[r])
        for o, v in zip(out, cx, strict=True):
            o[r] = v
    return tuple(out)


def _stage_starts(depth, w0, wa, wm):
    raw, ks, active = quantized_widths(depth, w0, wa, wm)
    first = np.ones_like(active)
    first[:, 1:] = raw[:, 1:] != raw[:, :-1]
    first &= active
    num_stages = first.sum(1)
    valid = num_stages == np.where(active, ks, 0).max(1) + 1
    return raw, first, num_stages, valid


def regnet_stage_count(depth, w0, wa, wm):
    """(num_stages, valid) of N RegNets: the cheap first filter of the sampler."""
    _, _, num_stages, valid = _stage_starts(np.asarray(depth, dtype=np.int64), w0, wa, wm)
    return num_stages, valid


def regnet_stages_batch(depth, w0, wa, wm, group_width, bottleneck: float):
    """Generation for N RegNets at once: per-stage arrays (N, S) padded with depth 0.

    Returns (depths, widths, groups, num_stages, valid); `valid` is False where a stage
    index is skipped (the spec validation rule).
    """
    depth = np.asarray(depth, dtype=np.int64)
    n = depth.shape[0]
    raw, first, num_stages, valid = _stage_starts(depth, w0, wa, wm)
    n_st = max(int(num_stages.max()), 1)
    rows, cols = np.nonzero(first)  # row-major: the stage starts of each row, in order
    stage = np.arange(len(rows)) - np.repeat(np.cumsum(num_stages) - num_stages, num_stages)
    raw_w = np.zeros((n, n_st), dtype=np.int64)
    raw_w[rows, stage] = raw[rows, cols]
    ends = np.broadcast_to(depth[:, None], (n, n_st)).copy()
    ends[rows[stage > 0], stage[stage > 0] - 1] = cols[stage > 0]
    starts = np.zeros((n, n_st), dtype=np.int64)
    starts[rows, stage] = cols
    depths = np.where(np.arange(n_st) < num_stages[:, None], ends - starts, 0)
    g = np.broadcast_to(np.asarray(group_width, dtype=np.int64), (n,))[:, None]
    widths, groups = compat(np.maximum(raw_w, 1), bottleneck, g)
    return depths, widths, groups, num_stages, valid


def regnet_complexity_batch(
    block: str,
    depth,
    w0,
    wa,
    wm,
    group_width,
    resolution=224,
    bottleneck: float | None = None,
    se_ratio: float | None = None,
    stem_width: int = 32,
    head_width: int = 0,
    in_channels: int = 3,
    num_classes: int = 1000,
) -> dict[str, np.ndarray]:
    """Complexity of N RegNets at once (arrays of length N); also returns validity and stages.

    Invalid rows (a skipped stage index) are not networks and report zeros.
    """
    kind = get_block(block)
    b = float(kind.bottleneck if bottleneck is None else bottleneck)
    se = float(kind.se_ratio if se_ratio is None else se_ratio)
    depths, widths, groups, num_stages, valid = regnet_stages_batch(
        depth, w0, wa, wm, group_width, b
    )
    n, n_st = depths.shape
    base = StageSpec(  # carries the fields all rows share; its depths and widths are unused
        block=block,
        depths=(1,) * n_st,
        widths=(8 * max(1, int(b)),) * n_st,
        group_widths=(1,) * n_st,
        bottlenecks=(b,) * n_st,
        strides=(2,) * n_st,
        se_ratio=se,
        stem_width=stem_width,
        head_width=head_width,
        in_channels=in_channels,
        num_classes=num_classes,
    )
    res = np.broadcast_to(np.asarray(resolution, dtype=np.int64), (n,))
    counts = stages_complexity_batch(base, depths[valid], widths[valid], groups[valid], res[valid])
    out = {}
    for key, value in zip(("flops", "params", "acts"), counts, strict=True):
        out[key] = np.zeros(n, dtype=value.dtype)  # object (Python ints) past 2**63
        out[key][valid] = value  # invalid rows are not networks: they report zeros
    return {**out, "valid": valid, "num_stages": num_stages}
