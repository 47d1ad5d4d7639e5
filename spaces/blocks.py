"""The block table: every block kind and every stem kind, described once.

A `Block` row says everything the rest of fastscale needs to know about a block kind: its
defaults (inner-width multiplier, SE ratio), activation, group rule, whether scaling widens
stem and head with it, its weight-decay class, its names in pycls and timm, its exact
complexity counter (written here, beside the table, pycls style) and the name of its
PyTorch module (in `spaces.build`, looked up there so that this table imports no torch). Specs, the builder,
the exporter, the sampler, the planner and the trainer read these fields; none of them tests a
block by its name. Adding a block = one counter, one module class and one row here
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spaces import ops as op_counters
from spaces.errors import FastscaleError
from spaces.layers import Cx, _iround, _itrunc

# Group rules: "grouped" = any group width that divides the inner width (scaled like width);
# "depthwise" = one channel per group, always (g = 1); "single" = one group (g = inner width).
GROUP_RULES = ("grouped", "depthwise", "single")


@dataclass(frozen=True)
class Block:
    """One block kind. `count(h, w_in, w_out, stride, g, b, k, se_ratio)` returns the block's
    running complexity (`Cx`); every argument but `k` may be a numpy array."""

    name: str
    summary: str
    bottleneck: float  # default inner-width multiplier b (expansion ratio for MBConv)
    se_ratio: float  # default squeeze-and-excitation ratio (0 = none)
    activation: str  # "relu" or "silu"
    group_rule: str  # one of GROUP_RULES
    stem: str  # default stem kind (a key of STEMS)
    # allowed shortcut kinds, the first the default: "projection" (identity, or a strided 1x1
    # conv + BN where shape changes), "avgpool" (ResNet-D: 2x2 average pool then 1x1 conv + BN),
    # "identity" (a skip only where shape is kept, none elsewhere: Z, MBConv)
    shortcuts: tuple[str, ...]
    scales_stem_head: bool  # scaling widens stem and head with the stages (EfficientNet's rule)
    weight_decay: float  # the paper's decay for networks of this block (never on BN/bias)
    count: Callable
    module: str  # class name in spaces.build
    pycls: str | None  # pycls BLOCK_TYPE / TRANS_FUN, None where pycls has no such block
    timm: str  # the timm class that implements the same block
    strategies: tuple[str, ...] = ()  # named scaling rules derived for it, planned by default
    pycls_se: bool = True  # pycls's SE_ON (SE after the 3x3, from the input width) is this SE
    timm_args: dict = field(default_factory=dict)  # timm constructor keywords selecting it
    # per-operation counter for the runtime/memory model (spaces.ops): `count`'s arguments
    # plus (act, shortcut); None = the runtime model cannot price this block
    ops: Callable | None = None

    @property
    def depthwise(self) -> bool:
        return self.group_rule == "depthwise"

    @property
    def grouped(self) -> bool:
        """Whether the group width is a free knob (the planner scales and fine-tunes it)."""
        return self.group_rule == "grouped"


@dataclass(frozen=True)
class Stem:
    """One stem kind: `count(resolution, in_channels, stem_width)` and its module class."""

    name: str
    summary: str
    count: Callable
    module: str
    pycls: str | None = None  # pycls STEM_TYPE, None where pycls has no such stem
    ops: Callable | None = None  # (resolution, in_channels, width, act) -> spaces.layers.Ops


def _bottleneck(h, w_in, w_out, stride, g, b, se_ratio, linear: bool) -> Cx:
    """RegNet X / Y / Z. X and Y project the shortcut when width or stride changes; Z (linear
    output) has no projection: its first block of a stage has no skip at all."""
    cx = Cx(h)
    w_b = _iround(w_out * b)
    if not linear:
        proj = (w_in != w_out) | (stride != 1)
        cx.add(Cx(h).conv(w_in, w_out, 1, stride).bn(w_out), proj)
    cx.conv(w_in, w_b, 1).bn(w_b)
    cx.conv(w_b, w_b, 3, stride, groups=w_b // g).bn(w_b)
    if se_ratio:
        cx.se(w_b, _iround(w_in * se_ratio))  # SE width from the block INPUT width, as pycls
    return cx.conv(w_b, w_out, 1).bn(w_out)


def count_xy(h, w_in, w_out, stride, g, b, k, se_ratio) -> Cx:
    return _bottleneck(h, w_in, w_out, stride, g, b, se_ratio, linear=False)


def count_z(h, w_in, w_out, stride, g, b, k, se_ratio) -> Cx:
    return _bottleneck(h, w_in, w_out, stride, g, b, se_ratio, linear=True)


def count_mbconv(h, w_in, w_out, stride, g, b, k, se_ratio) -> Cx:
    """EfficientNet MBConv: expansion b and SE from the block input width, truncated."""
    cx = Cx(h)
    w_exp = _itrunc(w_in * b)
    cx.add(Cx(h).conv(w_in, w_exp, 1).bn(w_exp), w_exp != w_in)  # no 1x1 expand at ratio 1
    cx.conv(w_exp, w_exp, k, stride, groups=w_exp).bn(w_exp)
    if se_ratio:
        cx.se(w_exp, _itrunc(w_in * se_ratio))
    return cx.conv(w_exp, w_out, 1).bn(w_out)


def _resnet_shortcut(cx: Cx, h, w_in, w_out, stride) -> None:
    """Projection where width or stride changes: a strided 1x1 conv + BN, or (ResNet-D) a
    2x2 average pool then a 1x1 conv + BN; both count the same (pooling is not counted)."""
    proj = (w_in != w_out) | (stride != 1)
    cx.add(Cx(h).conv(w_in, w_out, 1, stride).bn(w_out), proj)


def _resnet_se_width(w_out, se_ratio):
    """SE width of the ResNet blocks: se_ratio of the OUTPUT width, at least one channel."""
    w = _iround(w_out * se_ratio)
    return np.maximum(1, w) if isinstance(w, np.ndarray) else max(1, w)


def count_resnet_bottleneck(h, w_in, w_out, stride, g, b, k, se_ratio) -> Cx:
    """ResNet (v1.5, torchvision/timm): 1x1, 3x3 group conv with the stride, 1x1; SE on the
    OUTPUT width (ratio of the output width, as timm's SE-ResNet and ResNet-RS)."""
    cx = Cx(h)
    _resnet_shortcut(cx, h, w_in, w_out, stride)
    w_b = _iround(w_out * b)
    cx.conv(w_in, w_b, 1).bn(w_b)
    cx.conv(w_b, w_b, 3, stride, groups=w_b // g).bn(w_b)
    cx.conv(w_b, w_out, 1).bn(w_out)
    if se_ratio:
        cx.se(w_out, _resnet_se_width(w_out, se_ratio))
    return cx


def count_resnet_basic(h, w_in, w_out, stride, g, b, k, se_ratio) -> Cx:
    """ResNet basic block: 3x3 conv with the stride to round(w_out*b) (b = 1 in every
    published model), 3x3 conv to w_out, one group each; SE on the output."""
    cx = Cx(h)
    _resnet_shortcut(cx, h, w_in, w_out, stride)
    w_b = _iround(w_out * b)
    cx.conv(w_in, w_b, 3, stride).bn(w_b)
    cx.conv(w_b, w_out, 3).bn(w_out)
    if se_ratio:
        cx.se(w_out, _resnet_se_width(w_out, se_ratio))
    return cx


def count_simple_stem(resolution, in_channels, width) -> Cx:
    return Cx(resolution).conv(in_channels, width, 3, 2).bn(width)


def count_resnet_stem(resolution, in_channels, width) -> Cx:
    return Cx(resolution).conv(in_channels, width, 7, 2).bn(width).pool(width, 3, 2)


def _deep(resolution, in_channels, width) -> Cx:
    half = width // 2
    cx = Cx(resolution).conv(in_channels, half, 3, 2).bn(half)
    return cx.conv(half, half, 3).bn(half).conv(half, width, 3).bn(width)


def count_deep_stem(resolution, in_channels, width) -> Cx:
    return _deep(resolution, in_channels, width).pool(width, 3, 2)


def count_deep_conv_stem(resolution, in_channels, width) -> Cx:
    return _deep(resolution, in_channels, width).conv(width, width, 3, 2).bn(width)


_REGNET = dict(stem="simple", shortcuts=("projection",), scales_stem_head=False)
_RESNET = dict(
    se_ratio=0.0,
    activation="relu",
    group_rule="grouped",
    stem="resnet",
    shortcuts=("projection", "avgpool"),
    scales_stem_head=False,
    weight_decay=4e-5,  # ResNet-RS's training recipe (Bello et al. 2021, lowered from 1e-4)
)

BLOCKS: dict[str, Block] = {
    b.name: b
    for b in (
        Block(
            "X",
            "RegNet X: 1x1, 3x3 group conv, 1x1; projection shortcut; ReLU",
            1.0,
            0.0,
            "relu",
            "grouped",
            count=count_xy,
            ops=op_counters.ops_xy,
            module="Bottleneck",
            pycls="res_bottleneck_block",
            timm="timm.models.regnet.Bottleneck",
            weight_decay=2e-5,
            **_REGNET,
        ),
        Block(
            "Y",
            "RegNet Y: X + squeeze-and-excitation (from the block input width)",
            1.0,
            0.25,
            "relu",
            "grouped",
            count=count_xy,
            ops=op_counters.ops_xy,
            module="Bottleneck",
            pycls="res_bottleneck_block",
            timm="timm.models.regnet.Bottleneck",
            weight_decay=2e-5,
            **_REGNET,
        ),
        Block(
            "Z",
            "RegNet Z: inverted bottleneck (b=4), SiLU, SE, linear output, skip at equal shape",
            4.0,
            0.25,
            "silu",
            "grouped",
            count=count_z,
            ops=op_counters.ops_z,
            module="LinearBottleneck",
            timm_args={"linear_out": True, "downsample": None},
            pycls="res_bottleneck_linear_block",
            timm="timm.models.regnet.Bottleneck (linear_out)",
            weight_decay=2e-5,
            **{**_REGNET, "shortcuts": ("identity",)},
        ),
        Block(
            "MB",
            "EfficientNet MBConv: 1x1 expand, depthwise kxk, SE, linear 1x1 project",
            6.0,
            0.25,
            "silu",
            "depthwise",
            stem="simple",
            shortcuts=("identity",),
            scales_stem_head=True,
            weight_decay=1e-5,
            count=count_mbconv,
            ops=op_counters.ops_mbconv,
            module="MBConv",
            pycls=None,  # pycls builds MBConv only as MODEL.TYPE effnet
            timm="timm.models._efficientnet_blocks.InvertedResidual",
        ),
        Block(
            "R",
            "ResNet bottleneck: 1x1, 3x3 (group) conv with the stride, 1x1; SE on the output",
            0.25,
            count=count_resnet_bottleneck,
            ops=op_counters.ops_resnet_bottleneck,
            module="ResBottleneck",
            pycls="res_bottleneck_block",
            timm="timm.models.resnet.Bottleneck",
            strategies=("rs",),
            pycls_se=False,
            timm_args={"block": "Bottleneck", "expansion": 4},
            **_RESNET,
        ),
        Block(
            "RB",
            "ResNet basic block: two 3x3 convs, the first with the stride; SE on the output",
            1.0,
            count=count_resnet_basic,
            ops=op_counters.ops_resnet_basic,
            module="ResBasic",
            pycls="res_basic_block",
            timm="timm.models.resnet.BasicBlock",
            strategies=("rs",),
            pycls_se=False,
            timm_args={"block": "BasicBlock", "expansion": 1},
            **{**_RESNET, "group_rule": "single"},
        ),
    )
}

STEMS: dict[str, Stem] = {
    s.name: s
    for s in (
        Stem(
            "simple",
            "3x3 conv stride 2, BN, activation",
            count_simple_stem,
            "SimpleStem",
            "simple_stem_in",
            op_counters.ops_simple_stem,
        ),
        Stem(
            "resnet",
            "7x7 conv stride 2, BN, ReLU, 3x3 max-pool stride 2",
            count_resnet_stem,
            "ResStem",
            "res_stem_in",
            op_counters.ops_resnet_stem,
        ),
        Stem(
            "deep",
            "ResNet-D: 3x3 convs to w/2 (stride 2), w/2, w, each BN+ReLU; 3x3 max-pool stride 2",
            count_deep_stem,
            "DeepStem",
            ops=op_counters.ops_deep_stem,
        ),
        Stem(
            "deep-conv",
            "ResNet-RS: the deep stem with a 3x3 stride-2 conv + BN + ReLU in place of the "
            "max-pool (timm's replace_stem_pool)",
            count_deep_conv_stem,
            "DeepConvStem",
            ops=op_counters.ops_deep_conv_stem,
        ),
    )
}


class BlockError(FastscaleError):
    """An unknown block or stem kind."""


def get_block(name: str) -> Block:
    try:
        return BLOCKS[name]
    except (KeyError, TypeError):
        raise BlockError(f"block must be one of {', '.join(BLOCKS)}, got {name!r}") from None


def get_stem(name: str) -> Stem:
    try:
        return STEMS[name]
    except (KeyError, TypeError):
        raise BlockError(f"stem must be one of {', '.join(STEMS)}, got {name!r}") from None


def block_table_markdown() -> str:
    """The table as Markdown (docs/architecture.md quotes it)."""
    lines = [
        "| block | b | SE | act | groups | stem | shortcuts | decay | pycls | timm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in BLOCKS.values():
        lines.append(
            f"| {b.name} | {b.bottleneck:g} | {b.se_ratio:g} | {b.activation} | {b.group_rule} "
            f"| {b.stem} | {', '.join(b.shortcuts)} | {b.weight_decay:g} | {b.pycls or '-'} "
            f"| {b.timm} |"
        )
    return "\n".join(lines) + "\n"
