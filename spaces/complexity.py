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

    `valid` is False where a stage index is skipped (the spec validation rule);
    `num_stages` lets the sampler keep 4-stage models only.
    """
    from spaces.specs import BLOCK_DEFAULTS

    b_def, se_def = BLOCK_DEFAULTS[block]
    b = float(b_def if bottleneck is None else bottleneck)
    se = float(se_def if se_ratio is None else se_ratio)
    depth = np.asarray(depth, dtype=np.int64)
    n = depth.shape[0]
    g_in = np.broadcast_to(np.asarray(group_width, dtype=np.int64), (n,))
    raw, ks, active = quantized_widths(depth, w0, wa, wm)
    first = np.ones_like(active)
    first[:, 1:] = raw[:, 1:] != raw[:, :-1]
    first &= active
    num_stages = first.sum(1)
    k_max = np.where(active, ks, 0).max(1)
    valid = num_stages == k_max + 1
    widths, groups = compat(raw, b, g_in[:, None])
    res = np.broadcast_to(np.asarray(resolution, dtype=np.int64), (n,))
    cx = _stem(res, in_channels, stem_width)
    w_in = np.full(n, stem_width, dtype=np.int64)
    for j in range(raw.shape[1]):
        on = active[:, j]
        stride = np.where(first[:, j], 2, 1)
        blk = bottleneck_block(cx.h, w_in, widths[:, j], stride, groups[:, j], b, se, block)
        cx.add(blk, on)
        cx.h, w_in = np.where(on, blk.h, cx.h), np.where(on, widths[:, j], w_in)
    _head(cx, w_in, head_width, num_classes)
    return {
        "flops": cx.flops,
        "params": cx.params,
        "acts": cx.acts,
        "valid": valid,
        "num_stages": num_stages,
    }
