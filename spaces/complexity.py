"""Exact analytic flops / params / acts (REFERENCE §2, §4) without building a model.

The layer and block counters below use only arithmetic and numpy ufuncs, so the same code
counts one network (Python ints) or a batch of RegNets at once (int64 arrays, one array
entry per config). `complexity` walks a spec's stages; `regnet_complexity_batch` walks
block positions across a whole batch. They are tested equal.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spaces.generate import compat, quantized_widths


class Complexity(NamedTuple):
    flops: int
    params: int
    acts: int

    def as_dict(self) -> dict:
        return {"flops": int(self.flops), "params": int(self.params), "acts": int(self.acts)}


def _iround(x):
    """Round half to even, as numpy and Python's round do; stays an array for arrays."""
    return np.rint(x).astype(np.int64) if isinstance(x, np.ndarray) else int(round(x))


def _itrunc(x):
    return x.astype(np.int64) if isinstance(x, np.ndarray) else int(x)


class Cx:
    """Running complexity of a walk at square spatial size h."""

    __slots__ = ("h", "flops", "params", "acts")

    def __init__(self, h):
        self.h, self.flops, self.params, self.acts = h, 0, 0, 0

    def conv(self, cin, cout, k, stride=1, groups=1, bias=False):
        h = (self.h - 1) // stride + 1
        self.flops += k * k * cin * cout * h * h // groups + (cout * h * h if bias else 0)
        self.params += k * k * cin * cout // groups + (cout if bias else 0)
        self.acts += cout * h * h
        self.h = h
        return self

    def bn(self, c):
        self.params += 2 * c
        return self

    def linear(self, cin, cout):
        self.flops += cin * cout + cout
        self.params += cin * cout + cout
        self.acts += cout
        return self

    def se(self, c, c_se):
        """Squeeze-and-excitation: two biased 1x1 convs C -> c -> C at 1x1."""
        squeezed = Cx(1).conv(c, c_se, 1, bias=True).conv(c_se, c, 1, bias=True)
        return self.add(squeezed)

    def add(self, other: Cx, mask=1):
        self.flops += other.flops * mask
        self.params += other.params * mask
        self.acts += other.acts * mask
        return self


def bottleneck_block(h, w_in, w_out, stride, g, b, se_ratio, block):
    """X / Y / Z block (§4); any of the widths, stride, g, b may be arrays."""
    cx = Cx(h)
    w_b = _iround(w_out * b)
    if block != "Z":  # X and Y project the shortcut when width or stride changes
        proj = (w_in != w_out) | (stride != 1)
        cx.add(Cx(h).conv(w_in, w_out, 1, stride).bn(w_out), proj)
    cx.conv(w_in, w_b, 1).bn(w_b)
    cx.conv(w_b, w_b, 3, stride, groups=w_b // g).bn(w_b)
    if se_ratio:
        cx.se(w_b, _iround(w_in * se_ratio))
    return cx.conv(w_b, w_out, 1).bn(w_out)


def mbconv_block(h, w_in, w_out, stride, k, expansion, se_ratio):
    """EfficientNet MBConv (§4): expansion and SE from the block input width, truncated."""
    cx = Cx(h)
    w_exp = _itrunc(w_in * expansion)
    if w_exp != w_in:
        cx.conv(w_in, w_exp, 1).bn(w_exp)
    cx.conv(w_exp, w_exp, k, stride, groups=w_exp).bn(w_exp)
    if se_ratio:
        cx.se(w_exp, _itrunc(w_in * se_ratio))
    return cx.conv(w_exp, w_out, 1).bn(w_out)


def _stem(resolution, in_channels, stem_width):
    return Cx(resolution).conv(in_channels, stem_width, 3, 2).bn(stem_width)


def _head(cx: Cx, w_in, head_width, num_classes):
    if head_width:
        cx.add(Cx(cx.h).conv(w_in, head_width, 1).bn(head_width))
        w_in = head_width
    return cx.linear(w_in, num_classes)


def complexity(spec) -> Complexity:
    """Flops, params and acts of any spec (RegNet, stage-level or EfficientNet)."""
    s = spec.stages()
    cx = _stem(s.resolution, s.in_channels, s.stem_width)
    w_in = s.stem_width
    for i, depth in enumerate(s.depths):
        w, g, b, k = s.widths[i], s.group_widths[i], s.bottlenecks[i], s.kernels[i]
        for j in range(depth):
            stride = s.strides[i] if j == 0 else 1
            if s.block == "MB":
                blk = mbconv_block(cx.h, w_in, w, stride, k, b, s.se_ratio)
            else:
                blk = bottleneck_block(cx.h, w_in, w, stride, g, b, s.se_ratio, s.block)
            cx.add(blk)
            cx.h, w_in = blk.h, w
    _head(cx, w_in, s.head_width, s.num_classes)
    return Complexity(int(cx.flops), int(cx.params), int(cx.acts))


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

    Walks stages, not blocks: after its first block a stage repeats one identical block
    (d - 1) times, so each stage costs two block counts whatever its depth.
    """
    from spaces.specs import BLOCK_DEFAULTS

    b_def, se_def = BLOCK_DEFAULTS[block]
    b = float(b_def if bottleneck is None else bottleneck)
    se = float(se_def if se_ratio is None else se_ratio)
    depths, widths, groups, num_stages, valid = regnet_stages_batch(
        depth, w0, wa, wm, group_width, b
    )
    n = depths.shape[0]
    res = np.broadcast_to(np.asarray(resolution, dtype=np.int64), (n,))
    if not valid.all():  # count only real networks; invalid rows report zeros
        out = {k: np.zeros(n, dtype=np.int64) for k in ("flops", "params", "acts")}
        sub = _count_stages(
            block,
            depths[valid],
            widths[valid],
            groups[valid],
            res[valid],
            b,
            se,
            stem_width,
            head_width,
            in_channels,
            num_classes,
        )
        for k in out:
            out[k][valid] = sub[k]
        return {**out, "valid": valid, "num_stages": num_stages}
    out = _count_stages(
        block, depths, widths, groups, res, b, se, stem_width, head_width, in_channels, num_classes
    )
    return {**out, "valid": valid, "num_stages": num_stages}


def _count_stages(
    block, depths, widths, groups, res, b, se, stem_width, head_width, in_channels, num_classes
):
    n = depths.shape[0]
    cx = _stem(res.copy(), in_channels, stem_width)
    cx.flops, cx.params, cx.acts = (
        np.full(n, v, dtype=np.int64) for v in (cx.flops, cx.params, cx.acts)
    )
    w_in = np.full(n, stem_width, dtype=np.int64)
    for i in range(depths.shape[1]):
        rows = np.flatnonzero(depths[:, i] > 0)  # late stages exist in few rows: count only those
        w, g = widths[rows, i], groups[rows, i]
        first = bottleneck_block(cx.h[rows], w_in[rows], w, 2, g, b, se, block)
        rest = bottleneck_block(first.h, w, w, 1, g, b, se, block)
        stage = Cx(0).add(first).add(rest, depths[rows, i] - 1)
        cx.flops[rows] += stage.flops
        cx.params[rows] += stage.params
        cx.acts[rows] += stage.acts
        cx.h[rows], w_in[rows] = first.h, w
    _head(cx, w_in, head_width, num_classes)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}
