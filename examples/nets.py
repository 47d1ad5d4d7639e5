"""Small networks built from torch.nn, to try fastscale on models it did not define:
`fastscale complexity examples.nets:convnext_like --kwargs '{"width": 32}' -r 128` from the
repository's root (a factory `package.module:function` is imported with the current
directory first on the path, as uvicorn and gunicorn do)."""

import torch
from torch import nn


class ConvNeXtBlock(nn.Module):
    """ConvNeXt (Liu et al. 2022): 7×7 depthwise conv, LayerNorm, Linear 4×, GELU, Linear,
    layer scale, residual add."""

    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1, self.act, self.pw2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


def convnext_like(width: int = 32, num_classes: int = 10) -> nn.Module:
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 4, 4), ConvNeXtBlock(w), ConvNeXtBlock(w), nn.Conv2d(w, 2 * w, 2, 2),
        ConvNeXtBlock(2 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, num_classes),
    )  # fmt: skip


def _inverted(cin, cout, stride, act, expand=4):
    hidden = cin * expand
    return nn.Sequential(
        nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(),
        nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
        nn.BatchNorm2d(hidden), act(),
        nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
    )  # fmt: skip


def mobilenet_like(width: int = 16, num_classes: int = 10, relu6: bool = True) -> nn.Module:
    """MobileNetV2-like (Sandler et al. 2018): inverted residuals with ReLU6 (or ReLU), no
    skips."""
    w, act = width, nn.ReLU6 if relu6 else nn.ReLU
    return nn.Sequential(
        nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
        _inverted(w, w, 1, act), _inverted(w, 2 * w, 2, act), _inverted(2 * w, 4 * w, 2, act),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes),
    )  # fmt: skip
