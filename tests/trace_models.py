"""Small networks built from torch.nn for the tracing tests and `fastscale complexity
tests.trace_models:NAME` (a factory `package.module:function`); the well-behaved ones live in
examples/nets.py."""

import torch
from torch import nn

from examples.nets import ConvNeXtBlock, convnext_like, mobilenet_like  # noqa: F401 (API)


def raises():
    raise RuntimeError("this factory always fails")


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y if y.sum() > 0 else -y  # data-dependent control flow


def branchy() -> nn.Module:
    return _Branchy()


def cumulative() -> nn.Module:
    """A network with an operation fastscale has no kind for (a cumulative sum)."""

    class Cum(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    return nn.Sequential(nn.Conv2d(3, 4, 1), Cum())


def not_a_module():
    return 42


def plain_convnet(width: int = 8, num_classes: int = 10, relu6: bool = False) -> nn.Module:
    """Only conv 3×3, BN, ReLU (or ReLU6), global pool and a linear head: kinds every RegNet
    calibration prices."""
    w, act = width, nn.ReLU6 if relu6 else nn.ReLU
    return nn.Sequential(
        nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), act(),
        nn.Conv2d(w, 2 * w, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * w), act(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, num_classes),
    )  # fmt: skip


def mobilenet_inplace(width: int = 16, relu6: bool = False) -> nn.Module:
    """`mobilenet_like` with in-place activations, as fastscale's own blocks (and
    torchvision's MobileNetV2) use them."""
    model = mobilenet_like(width, relu6=relu6)
    for m in model.modules():
        if isinstance(m, nn.ReLU | nn.ReLU6):
            m.inplace = True
    return model
