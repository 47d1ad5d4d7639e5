"""PyTorch modules of the block table's blocks and stems (RegNet X/Y/Z, MBConv, ResNet
bottleneck and basic; simple, ResNet, deep and deep-conv stems). `spaces.build.Network` picks
each class by the name in `spaces.blocks`. Every layer mirrors one term of the block's
analytic counter there, so parameter counts agree exactly.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU}


def _act(name: str) -> nn.Module:
    return _ACTIVATIONS[name](inplace=True)


class ConvBNAct(nn.Sequential):
    """k×k conv (no bias, "same" padding) + BN (+ activation); the unit of every block."""

    def __init__(self, w_in, w_out, k=1, stride=1, groups=1, act: str | None = None):
        layers = OrderedDict(
            conv=nn.Conv2d(w_in, w_out, k, stride, padding=k // 2, groups=groups, bias=False),
            bn=nn.BatchNorm2d(w_out),
        )
        if act:
            layers["act"] = _act(act)
        super().__init__(layers)


class SqueezeExcite(nn.Module):
    """SE: global pool, biased 1×1 reduce to `w_se`, activation, biased 1×1 expand, sigmoid gate."""

    def __init__(self, w, w_se, act: str):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(w, w_se, 1, bias=True)
        self.act = _act(act)
        self.expand = nn.Conv2d(w_se, w, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


def _drop_connect(x, rate: float, training: bool):
    """Drop whole residual branches per sample (EfficientNet's drop-connect), scaled to keep E[x]."""
    if not training or rate <= 0:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class Bottleneck(nn.Module):
    """RegNet X / Y block: 1×1, 3×3 group conv (+SE for Y), 1×1; identity or projection
    shortcut, ReLU after the add. `LinearBottleneck` is the Z variant."""

    linear = False

    def __init__(self, kind, w_in, w_out, stride, group_width, bottleneck, kernel, se_ratio, **_):
        super().__init__()
        act = kind.activation
        w_b = int(round(w_out * bottleneck))
        self.conv1 = ConvBNAct(w_in, w_b, 1, act=act)
        self.conv2 = ConvBNAct(w_b, w_b, 3, stride, groups=w_b // group_width, act=act)
        # SE width from the block INPUT width, as pycls does.
        self.se = SqueezeExcite(w_b, int(round(w_in * se_ratio)), act) if se_ratio else None
        self.conv3 = ConvBNAct(w_b, w_out, 1)
        if self.linear:
            self.has_skip = w_in == w_out and stride == 1
            self.proj = None
        else:
            self.has_skip = True
            needs_proj = w_in != w_out or stride != 1
            self.proj = ConvBNAct(w_in, w_out, 1, stride) if needs_proj else None
        self.act = None if self.linear else _act(act)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv3.bn

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        if self.se is not None:
            out = self.se(out)
        out = self.conv3(out)
        if self.has_skip:
            out = out + (self.proj(x) if self.proj is not None else x)
        return self.act(out) if self.act is not None else out


class LinearBottleneck(Bottleneck):
    """RegNet Z: inverted (b=4), SiLU, SE, linear output, a skip only when shape is kept (the
    first block of a stage has none) and no activation after the add."""

    linear = True


class MBConv(nn.Module):
    """EfficientNet MBConv: 1×1 expand (when the expanded width differs), depthwise k×k, SE,
    linear 1×1 projection; residual (with optional drop-connect) at stride 1, equal widths."""

    def __init__(
        self, kind, w_in, w_out, stride, kernel, bottleneck, se_ratio, drop_connect=0.0, **_
    ):
        super().__init__()
        act = kind.activation
        w_exp = int(w_in * bottleneck)
        self.expand = ConvBNAct(w_in, w_exp, 1, act=act) if w_exp != w_in else None
        self.dwconv = ConvBNAct(w_exp, w_exp, kernel, stride, groups=w_exp, act=act)
        self.se = SqueezeExcite(w_exp, int(w_in * se_ratio), act) if se_ratio else None
        self.project = ConvBNAct(w_exp, w_out, 1)
        self.has_skip = stride == 1 and w_in == w_out
        self.drop_connect = float(drop_connect)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.project.bn

    def forward(self, x):
        out = self.expand(x) if self.expand is not None else x
        out = self.dwconv(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if self.has_skip:
            out = x + _drop_connect(out, self.drop_connect, self.training)
        return out


def _resnet_shortcut(w_in, w_out, stride, shortcut: str) -> nn.Module | None:
    """None (identity) when shape is kept; else a strided 1×1 conv + BN ("projection") or
    ResNet-D's 2×2 average pool then 1×1 conv + BN ("avgpool")."""
    if w_in == w_out and stride == 1:
        return None
    if shortcut == "avgpool":
        pool = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        return nn.Sequential(OrderedDict(pool=pool, proj=ConvBNAct(w_in, w_out, 1)))
    return ConvBNAct(w_in, w_out, 1, stride)


class _ResBlock(nn.Module):
    """Shared tail of the ResNet blocks: SE on the output, shortcut add, ReLU."""

    def _tail(self, kind, w_in, w_out, stride, se_ratio, shortcut):
        act = kind.activation
        w_se = max(1, int(round(w_out * se_ratio)))  # as spaces.blocks._resnet_se_width
        self.se = SqueezeExcite(w_out, w_se, act) if se_ratio else None
        self.proj = _resnet_shortcut(w_in, w_out, stride, shortcut)
        self.has_skip = True
        self.act = _act(act)

    def forward(self, x):
        out = self.body(x)
        if self.se is not None:
            out = self.se(out)
        out = out + (self.proj(x) if self.proj is not None else x)
        return self.act(out)


class ResBottleneck(_ResBlock):
    """ResNet bottleneck (torchvision/timm v1.5): 1×1, 3×3 group conv with the stride, 1×1."""

    def __init__(self, kind, w_in, w_out, stride, group_width, bottleneck, se_ratio, shortcut, **_):
        super().__init__()
        act = kind.activation
        w_b = int(round(w_out * bottleneck))
        self.body = nn.Sequential(
            OrderedDict(
                conv1=ConvBNAct(w_in, w_b, 1, act=act),
                conv2=ConvBNAct(w_b, w_b, 3, stride, groups=w_b // group_width, act=act),
                conv3=ConvBNAct(w_b, w_out, 1),
            )
        )
        self._tail(kind, w_in, w_out, stride, se_ratio, shortcut)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.body.conv3.bn


class ResBasic(_ResBlock):
    """ResNet basic block: 3×3 conv with the stride, 3×3 conv."""

    def __init__(self, kind, w_in, w_out, stride, bottleneck, se_ratio, shortcut, **_):
        super().__init__()
        w_b = int(round(w_out * bottleneck))
        self.body = nn.Sequential(
            OrderedDict(
                conv1=ConvBNAct(w_in, w_b, 3, stride, act=kind.activation),
                conv2=ConvBNAct(w_b, w_out, 3),
            )
        )
        self._tail(kind, w_in, w_out, stride, se_ratio, shortcut)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.body.conv2.bn


class SimpleStem(ConvBNAct):
    """3×3 conv stride 2, BN, activation (pycls's simple_stem_in)."""

    def __init__(self, w_in, w_out, act):
        super().__init__(w_in, w_out, 3, 2, act=act)


class ResStem(nn.Sequential):
    """ResNet: 7×7 conv stride 2, BN, ReLU, 3×3 max-pool stride 2."""

    def __init__(self, w_in, w_out, act):
        super().__init__(
            OrderedDict(
                conv=ConvBNAct(w_in, w_out, 7, 2, act=act),
                pool=nn.MaxPool2d(3, 2, padding=1),
            )
        )


class DeepStem(nn.Sequential):
    """ResNet-D: three 3×3 convs to w/2 (stride 2), w/2, w, each BN + ReLU; 3×3 max-pool."""

    def __init__(self, w_in, w_out, act, pool: nn.Module | None = None):
        half = w_out // 2
        super().__init__(
            OrderedDict(
                conv1=ConvBNAct(w_in, half, 3, 2, act=act),
                conv2=ConvBNAct(half, half, 3, act=act),
                conv3=ConvBNAct(half, w_out, 3, act=act),
                pool=nn.MaxPool2d(3, 2, padding=1) if pool is None else pool,
            )
        )


class DeepConvStem(DeepStem):
    """ResNet-RS: the deep stem with a strided 3×3 conv + BN + ReLU in place of the max-pool."""

    def __init__(self, w_in, w_out, act):
        super().__init__(w_in, w_out, act, pool=ConvBNAct(w_out, w_out, 3, 2, act=act))
