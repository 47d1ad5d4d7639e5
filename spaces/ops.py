"""Per-operation counters of every block and stem: what a runtime or memory model prices
(docs/planner.md).

`spaces.complexity` counts three totals (flops, params, acts). A step's time and memory
depend on *which* operations make up those totals: a depthwise conv does few multiply-adds
per element it reads, SiLU costs more than ReLU, every call of an operation has a fixed
overhead, and BatchNorm, activations, residual adds and SE gating move memory without any
flops. The counters here visit the same layers as the complexity counters, with
`spaces.layers.Ops` recording per operation kind (`spaces.layers.KINDS`) its multiply-adds
(`flops`), the elements it reads (`inputs`) and writes (`outputs`) and how many times it is
called (`calls`), for ONE image.

Every block and stem kind of the block table (`spaces.blocks`) points at its op counter
here (`Block.ops`, `Stem.ops`), written beside the module it mirrors: same arguments as the
complexity counter plus the activation and shortcut kind. A new block needs one such
function; the walks over a network (`spaces.op_walk`), the runtime model and its calibration
then price it unchanged. This module is a leaf: it knows counters, not the block table.

Only arithmetic and numpy ufuncs, so one counter counts a single block (Python ints) or N
blocks at once (numpy arrays).
"""

from __future__ import annotations

import numpy as np

from spaces.layers import ACT_KINDS, CONV_KINDS, FLOP_KINDS, KINDS, Ops, _iround, _itrunc

__all__ = ["ACT_KINDS", "CONV_KINDS", "FLOP_KINDS", "KINDS", "Ops"]


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
