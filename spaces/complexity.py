"""Exact analytic flops / params / acts without building a model (docs/models.md).

The layer counter (`spaces.layers.Cx`) and the block counters of the block table
(`spaces.blocks`) use only arithmetic and numpy ufuncs, so the same code counts one network
(Python ints) or a batch of networks at once (int64 arrays, one array entry per config). `complexity` walks a spec's stages; `regnet_complexity_batch` walks
block positions across a whole batch. They are tested equal.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spaces.blocks import get_block, get_stem
from spaces.generate import compat, quantized_widths
from spaces.layers import Cx


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
    return cx.linear(np.where(has_conv, head_width, w_in), num_classes)


def complexity(spec) -> Complexity:
    """Flops, params and acts of any spec (RegNet, stage-level or EfficientNet): the literal
    block-by-block walk; `stages_complexity_batch` is its vectorized face, tested equal."""
    s = spec.stages()
    cx = stem_complexity(s.resolution, s.in_channels, s.stem_width, s.stem)
    w_in = s.stem_width
    for i, depth in enumerate(s.depths):
        w, g, b, k = s.widths[i], s.group_widths[i], s.bottlenecks[i], s.kernels[i]
        for j in range(depth):
            stride = s.strides[i] if j == 0 else 1
            blk = block_complexity(s.block, cx.h, w_in, w, stride, g, b, k, s.se_ratio)
            cx.add(blk)
            cx.h, w_in = blk.h, w
    head_complexity(cx, w_in, s.head_width, s.num_classes)
    return Complexity(int(cx.flops), int(cx.params), int(cx.acts))


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
    head_complexity(cx, w_in, column(head_width, base.head_width), base.num_classes)
    return cx.flops, cx.params, cx.acts


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
    from spaces.specs import StageSpec

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
    out = {k: np.zeros(n, dtype=np.int64) for k in ("flops", "params", "acts")}
    counts = stages_complexity_batch(base, depths[valid], widths[valid], groups[valid], res[valid])
    for key, value in zip(out, counts, strict=True):
        out[key][valid] = value  # invalid rows are not networks: they report zeros
    return {**out, "valid": valid, "num_stages": num_stages}
