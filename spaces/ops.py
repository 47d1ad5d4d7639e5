"""Per-operation counts of a network: what a runtime or memory model prices (docs/planner.md).

`spaces.complexity` counts three totals (flops, params, acts). A step's time and memory
depend on *which* operations make up those totals: a depthwise conv does few multiply-adds
per element it reads, SiLU costs more than ReLU, every call of an operation has a fixed
overhead, and BatchNorm, activations, residual adds and SE gating move memory without any
flops. The walk here visits the same layers as the complexity walk, with `spaces.layers.Ops`
recording per operation kind (`spaces.layers.KINDS`) its multiply-adds (`flops`), the
elements it reads (`inputs`) and writes (`outputs`) and how many times it is called
(`calls`), for ONE image.

Every block and stem kind of the block table (`spaces.blocks`) points at its op counter
here (`Block.ops`, `Stem.ops`), written beside the module it mirrors: same arguments as the
complexity counter plus the activation and shortcut kind. A new block needs one such
function; the walks, the runtime model and its calibration then price it unchanged.

Only arithmetic and numpy ufuncs, so one walk counts a single spec (Python ints) and
`stages_ops_batch` counts N networks of one base at once. The sums over kinds equal
`complexity()`'s flops, params and acts (tested for every registered model).
"""

from __future__ import annotations

import numpy as np

from spaces.layers import ACT_KINDS, CONV_KINDS, FLOP_KINDS, KINDS, Ops, _iround, _itrunc

__all__ = ["ACT_KINDS", "CONV_KINDS", "FLOP_KINDS", "KINDS", "Ops", "op_counts", "stages_ops_batch"]


def _conv_bn(ops: Ops, cin, cout, k, stride=1, groups=1, act=None) -> Ops:
    """ConvBNAct of `spaces.modules`: conv, BN, optional activation."""
    ops.conv(cin, cout, k, stride, groups).bn(cout)
    return ops.act(act, cout) if act else ops


def _regnet(h, w_in, w_out, stride, g, b, se_ratio, act, linear: bool) -> Ops:
    """RegNet X / Y (`Bottleneck`) and Z (`LinearBottleneck`)."""
    ops = Ops(h)
    w_b = _iround(w_out * b)
    if not linear:
        proj = (w_in != w_out) | (stride != 1)
        ops.merge(_conv_bn(Ops(h), w_in, w_out, 1, stride), proj)
    _conv_bn(ops, w_in, w_b, 1, act=act)
    _conv_bn(ops, w_b, w_b, 3, stride, w_b // g, act)
    if se_ratio:
        ops.se(w_b, _iround(w_in * se_ratio), act)
    _conv_bn(ops, w_b, w_out, 1)
    if linear:  # a skip only where the shape is kept, no activation after it
        return ops.residual(w_out, (w_in == w_out) & (stride == 1))
    return ops.residual(w_out).act(act, w_out)


def ops_xy(h, w_in, w_out, stride, g, b, k, se_ratio, act="relu", shortcut="projection"):
    return _regnet(h, w_in, w_out, stride, g, b, se_ratio, act, linear=False)


def ops_z(h, w_in, w_out, stride, g, b, k, se_ratio, act="silu", shortcut="identity"):
    return _regnet(h, w_in, w_out, stride, g, b, se_ratio, act, linear=True)


def ops_mbconv(h, w_in, w_out, stride, g, b, k, se_ratio, act="silu", shortcut="identity"):
    """EfficientNet MBConv (`MBConv`): expand, depthwise k×k, SE, project, skip."""
    ops = Ops(h)
    w_exp = _itrunc(w_in * b)
    ops.merge(_conv_bn(Ops(h), w_in, w_exp, 1, act=act), w_exp != w_in)
    _conv_bn(ops, w_exp, w_exp, k, stride, w_exp, act)
    if se_ratio:
        ops.se(w_exp, _itrunc(w_in * se_ratio), act)
    _conv_bn(ops, w_exp, w_out, 1)
    return ops.residual(w_out, (stride == 1) & (w_in == w_out))


def _resnet_tail(ops: Ops, h, w_in, w_out, stride, se_ratio, act, shortcut) -> Ops:
    """SE on the output, the shortcut (projection or ResNet-D's pool + 1×1), add, ReLU."""
    if se_ratio:
        w_se = _iround(w_out * se_ratio)
        ops.se(w_out, np.maximum(1, w_se) if isinstance(w_se, np.ndarray) else max(1, w_se), act)
    proj = (w_in != w_out) | (stride != 1)
    short = Ops(h)
    if shortcut == "avgpool" and stride > 1:
        _conv_bn(short.avgpool(w_in, stride), w_in, w_out, 1)
    else:
        _conv_bn(short, w_in, w_out, 1, stride)
    ops.merge(short, proj)
    return ops.residual(w_out).act(act, w_out)


def ops_resnet_bottleneck(h, w_in, w_out, stride, g, b, k, se_ratio, act="relu",
                          shortcut="projection"):  # fmt: skip
    """ResNet bottleneck (`ResBottleneck`): 1×1, 3×3 group conv with the stride, 1×1."""
    ops = Ops(h)
    w_b = _iround(w_out * b)
    _conv_bn(ops, w_in, w_b, 1, act=act)
    _conv_bn(ops, w_b, w_b, 3, stride, w_b // g, act)
    _conv_bn(ops, w_b, w_out, 1)
    return _resnet_tail(ops, h, w_in, w_out, stride, se_ratio, act, shortcut)


def ops_resnet_basic(h, w_in, w_out, stride, g, b, k, se_ratio, act="relu",
                     shortcut="projection"):  # fmt: skip
    """ResNet basic block (`ResBasic`): 3×3 conv with the stride, 3×3 conv."""
    ops = Ops(h)
    w_b = _iround(w_out * b)
    _conv_bn(ops, w_in, w_b, 3, stride, act=act)
    _conv_bn(ops, w_b, w_out, 3)
    return _resnet_tail(ops, h, w_in, w_out, stride, se_ratio, act, shortcut)


def ops_simple_stem(resolution, in_channels, width, act) -> Ops:
    return _conv_bn(Ops(resolution), in_channels, width, 3, 2, act=act)


def ops_resnet_stem(resolution, in_channels, width, act) -> Ops:
    return _conv_bn(Ops(resolution), in_channels, width, 7, 2, act=act).maxpool(width, 3, 2)


def _deep(resolution, in_channels, width, act) -> Ops:
    half = width // 2
    ops = _conv_bn(Ops(resolution), in_channels, half, 3, 2, act=act)
    return _conv_bn(_conv_bn(ops, half, half, 3, act=act), half, width, 3, act=act)


def ops_deep_stem(resolution, in_channels, width, act) -> Ops:
    return _deep(resolution, in_channels, width, act).maxpool(width, 3, 2)


def ops_deep_conv_stem(resolution, in_channels, width, act) -> Ops:
    return _conv_bn(_deep(resolution, in_channels, width, act), width, width, 3, 2, act=act)


def head_ops(ops: Ops, w_in, head_width, num_classes, act) -> Ops:
    """Optional 1×1 conv head (head_width 0 = none), global pool, then the classifier."""
    has_conv = head_width > 0
    ops.merge(_conv_bn(Ops(ops.h), w_in, head_width, 1, act=act), has_conv)
    width = np.where(has_conv, head_width, w_in)
    if not isinstance(has_conv, np.ndarray):
        width = int(width)
    return ops.avgpool(width).linear(width, num_classes)


def _block(name):
    from spaces.blocks import BlockError, get_block

    kind = get_block(name)
    if kind.ops is None:
        raise BlockError(
            f"block {name} has no operation counter (spaces.ops), so its runtime and memory "
            "cannot be predicted; write one beside its module and point its table row at it"
        )
    return kind


def op_counts(spec) -> Ops:
    """Per-kind operation counts of any spec: the block-by-block walk of `complexity()`."""
    s = spec.stages()
    kind = _block(s.block)
    act = kind.activation
    from spaces.blocks import get_stem

    ops = get_stem(s.stem).ops(s.resolution, s.in_channels, s.stem_width, act)
    w_in = s.stem_width
    for i, depth in enumerate(s.depths):
        w, g, b, k = s.widths[i], s.group_widths[i], s.bottlenecks[i], s.kernels[i]
        for j in range(depth):
            stride = s.strides[i] if j == 0 else 1
            blk = kind.ops(ops.h, w_in, w, stride, g, b, k, s.se_ratio, act, s.shortcut)
            ops.merge(blk)
            ops.h, w_in = blk.h, w
    head_ops(ops, w_in, s.head_width, s.num_classes, act)
    ops.counts = {k: int(v) for k, v in ops.counts.items()}  # numpy booleans made some int64
    return ops


def stages_ops_batch(
    base, depths, widths, groups, resolution, stem_width=None, head_width=None
) -> Ops:
    """Per-kind counts of N networks sharing `base`'s block and stem kind, strides, kernels,
    bottlenecks, SE ratio, shortcut, input channels and classes (the arguments of
    `spaces.complexity.stages_complexity_batch`): every count is an (N,) int64 array.

    Walks stages: after its first block a stage repeats one identical block (d - 1) times.
    """
    from spaces.blocks import get_stem

    depths = np.asarray(depths, dtype=np.int64)
    widths, groups = (np.asarray(v, dtype=np.int64) for v in (widths, groups))
    n = depths.shape[0]

    def column(v, default):
        v = default if v is None else v
        return np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy()

    kind = _block(base.block)
    act = kind.activation
    w_in = column(stem_width, base.stem_width)
    ops = get_stem(base.stem).ops(column(resolution, base.resolution), base.in_channels, w_in, act)
    h = ops.h.copy()
    for i in range(depths.shape[1]):
        present = depths[:, i] > 0  # absent stages are counted with width 8, then masked out
        w, g = np.where(present, widths[:, i], 8), np.where(present, groups[:, i], 1)
        t, b, k, se = base.strides[i], base.bottlenecks[i], base.kernels[i], base.se_ratio
        first = kind.ops(h, w_in, w, t, g, b, k, se, act, base.shortcut)
        rest = kind.ops(first.h, w, w, 1, g, b, k, se, act, base.shortcut)
        ops.merge(first, present).merge(rest, np.maximum(depths[:, i] - 1, 0))
        h = np.where(present, first.h, h)
        w_in = np.where(present, w, w_in)
    ops.h = h
    head_ops(ops, w_in, column(head_width, base.head_width), base.num_classes, act)
    ops.counts = {k: np.broadcast_to(v, (n,)).astype(np.int64) for k, v in ops.counts.items()}
    return ops
