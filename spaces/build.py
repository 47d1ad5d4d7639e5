"""PyTorch modules for any spec: stems, the block table's blocks (RegNet X/Y/Z, MBConv,
ResNet bottleneck and basic), head. `Network` picks each module by the table's class name.

With `spaces.modules`, the only module of `spaces` that imports torch. Every layer mirrors one
term of the analytic count in `spaces.blocks`, so a built network has exactly
`complexity(spec).params` parameters, and `measure_complexity` (forward hooks) reproduces its flops and acts.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from spaces import modules
from spaces.blocks import get_block, get_stem
from spaces.complexity import Complexity
from spaces.modules import Bottleneck, ConvBNAct, LinearBottleneck, MBConv  # noqa: F401 (API)


class Head(nn.Module):
    """Optional 1×1 conv + BN + activation to `head_width`, global average pool, dropout, FC."""

    def __init__(self, w_in, head_width, num_classes, act, dropout=0.0):
        super().__init__()
        self.conv = ConvBNAct(w_in, head_width, 1, act=act) if head_width else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.fc = nn.Linear(head_width or w_in, num_classes, bias=True)

    def forward(self, x):
        if self.conv is not None:
            x = self.conv(x)
        x = self.pool(x).flatten(1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)


class Network(nn.Module):
    """stem → s1 … sN (one `nn.Sequential` of blocks b1 … per stage) → head."""

    def __init__(self, spec, dropout: float = 0.0, drop_connect: float = 0.0):
        super().__init__()
        s = spec.stages()
        self.spec = spec
        kind = get_block(s.block)
        act = kind.activation
        module = getattr(modules, kind.module)
        self.stem = getattr(modules, get_stem(s.stem).module)(s.in_channels, s.stem_width, act)
        w_in = s.stem_width
        for i, depth in enumerate(s.depths):
            blocks = OrderedDict()
            for j in range(depth):
                blocks[f"b{j + 1}"] = module(
                    kind=kind,
                    w_in=w_in,
                    w_out=s.widths[i],
                    stride=s.strides[i] if j == 0 else 1,
                    group_width=s.group_widths[i],
                    bottleneck=s.bottlenecks[i],
                    kernel=s.kernels[i],
                    se_ratio=s.se_ratio,
                    shortcut=s.shortcut,
                    drop_connect=drop_connect,
                )
                w_in = s.widths[i]
            self.add_module(f"s{i + 1}", nn.Sequential(blocks))
        self.head = Head(w_in, s.head_width, s.num_classes, act, dropout)

    def extra_repr(self) -> str:
        s = self.spec.stages()
        return f"family={self.spec.family}, block={s.block}, resolution={s.resolution}"

    def stage_modules(self) -> list[nn.Sequential]:
        return [m for name, m in self.named_children() if name[0] == "s" and name[1:].isdigit()]

    def blocks(self) -> list[nn.Module]:
        return [blk for stage in self.stage_modules() for blk in stage]

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stage_modules():
            x = stage(x)
        return self.head(x)


def init_weights(model: nn.Module, zero_init_last_bn: bool = True) -> None:
    """pycls initialisation: He normal with fan_out = k*k*C_out for convs, BN γ=1 β=0,
    FC normal(0, 0.01) with zero bias. With `zero_init_last_bn`, the last BN γ of every block
    that has a skip connection starts at 0, so the block starts as its shortcut; blocks
    without a skip (Z and MBConv stage openers) keep γ=1, or they would output only zeros."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
            nn.init.zeros_(m.bias)
    if zero_init_last_bn:
        for m in model.modules():
            if getattr(m, "has_skip", False) and hasattr(m, "last_bn"):
                nn.init.zeros_(m.last_bn.weight)


def build_model(
    spec, zero_init_last_bn: bool = True, dropout: float = 0.0, drop_connect: float = 0.0
) -> Network:
    """The PyTorch network of a spec (RegNet, stage-level or EfficientNet), pycls-initialised.

    `dropout` is applied before the classifier and `drop_connect` to MBConv residual branches;
    both have no parameters and are off by default.
    """
    model = Network(spec, dropout=dropout, drop_connect=drop_connect)
    init_weights(model, zero_init_last_bn=zero_init_last_bn)
    return model


def count_parameters(model: nn.Module) -> int:
    """Free parameters (BN running statistics are buffers and do not count)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def measure_complexity(
    model: nn.Module, resolution: int, in_channels: int | None = None
) -> Complexity:
    """Flops, params and acts measured on one real forward pass with hooks (docs/models.md):
    conv/linear multiply-adds (+1 per output for a bias) and output elements, max-pool output
    elements; BN, activations,
    SE gating, adds and pooling are not counted. A cross-check of the analytic counter."""
    if in_channels is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        in_channels = first.in_channels
    totals = {"flops": 0, "acts": 0}

    def pool_hook(module, _inputs, output):
        totals["acts"] += output[0].numel()  # a max-pool's output counts as acts, nothing else

    def hook(module, _inputs, output):
        positions = output[0, 0].numel() if isinstance(module, nn.Conv2d) else 1
        flops = module.weight.numel() * positions
        if module.bias is not None:
            flops += module.bias.numel() * positions
        totals["flops"] += flops
        totals["acts"] += output[0].numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    handles += [
        m.register_forward_hook(pool_hook) for m in model.modules() if isinstance(m, nn.MaxPool2d)
    ]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        x = torch.zeros(
            1, in_channels, resolution, resolution, dtype=param.dtype, device=param.device
        )
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return Complexity(totals["flops"], count_parameters(model), totals["acts"])
