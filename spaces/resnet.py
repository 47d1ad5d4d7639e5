"""The ResNet family: ResNet, ResNeXt, ResNet-D, SE-ResNet and ResNet-RS as one spec.

A `ResNetSpec` is (block, depths, widths, bottleneck, groups, stem, shortcut, SE ratio,
resolution): He et al. 2016 (bottleneck "R" / basic "RB" blocks, stride on the 3×3 conv as in
torchvision and timm), Xie et al. 2017 (ResNeXt: `groups` = cardinality), He et al. 2019
("Bag of tricks", ResNet-D: deep stem, average-pool shortcut), Hu et al. 2018 (SE on the
block output), Bello et al. 2021 (ResNet-RS = ResNet-D + SE 0.25, at its own resolutions).
`.stages()` gives the stage-level network every other module works on; `MODELS` are the
registry entries, `TIMM_NAMES` / `TORCHVISION_NAMES` the same networks' names there.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from spaces.blocks import BLOCKS
from spaces.families import register_family
from spaces.specs import (
    NetworkSpec,
    SpecError,
    StageSpec,
    _check,
    _check_stem,
    _default_stem_and_shortcut,
)

RESNET_BLOCKS = ("R", "RB")
WIDTHS = {"R": (256, 512, 1024, 2048), "RB": (64, 128, 256, 512)}


@register_family  # spec files with `family: resnet` load
@dataclass(frozen=True, repr=False)
class ResNetSpec(NetworkSpec):
    """A ResNet: per-stage depths and output widths; stage 1 has stride 1 (after the stem's
    max-pool), later stages stride 2. `groups` is the cardinality of the 3×3 convs (ResNeXt),
    `bottleneck` the inner width over the output width (1/4 for ResNet, 1/2 for 32x4d)."""

    family = "resnet"
    FILE_KEYS = ("depths", "block", "widths", "bottleneck", "groups", "stem", "shortcut",
                 "se_ratio", "resolution", "stem_width", "head_width", "in_channels",
                 "num_classes")  # fmt: skip
    depths: tuple[int, ...]
    block: str = "R"
    widths: tuple[int, ...] = ()  # () = the standard widths of the block
    bottleneck: float = 0.0  # 0 = the block's default
    groups: int = 1
    stem: str = ""  # "" = the block's default stem (7×7 + max-pool)
    shortcut: str = ""  # "" = the block's default (strided 1×1 projection)
    _: KW_ONLY
    stem_width: int = 64

    def __post_init__(self):
        _check(
            self.block in RESNET_BLOCKS,
            f"ResNet block must be one of {', '.join(RESNET_BLOCKS)}, got {self.block!r}",
        )
        kind = BLOCKS[self.block]
        try:
            depths = tuple(int(d) for d in self.depths)
            widths = tuple(int(w) for w in (self.widths or WIDTHS[self.block][: len(depths)]))
        except (TypeError, ValueError):
            raise SpecError(
                f"depths and widths must be lists of integers, got {self.depths!r}, {self.widths!r}"
            ) from None
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "bottleneck", float(self.bottleneck or kind.bottleneck))
        _default_stem_and_shortcut(self, kind)
        for name in ("groups", "resolution", "stem_width", "head_width"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "se_ratio", float(self.se_ratio))
        _check(len(depths) >= 1, "a ResNet needs at least one stage")
        _check(
            len(widths) == len(depths),
            f"widths has {len(widths)} entries but depths has {len(depths)}; give one per stage",
        )
        _check(all(d >= 1 for d in depths), f"depths must be >= 1, got {list(depths)}")
        _check(all(w >= 1 for w in widths), f"widths must be >= 1, got {list(widths)}")
        _check(self.groups >= 1, f"groups must be >= 1, got {self.groups}")
        _check_stem(self)
        _check(
            self.block != "RB" or self.groups == 1,
            f"basic blocks (RB) have one group: groups must be 1, got {self.groups}",
        )
        for w in widths:
            inner = int(round(w * self.bottleneck))
            _check(
                inner >= 1 and inner % self.groups == 0,
                f"inner width {inner} (width {w} × bottleneck {self.bottleneck:g}) is not "
                f"divisible by groups={self.groups}; use widths whose inner width is a "
                f"multiple of {self.groups}",
            )
        self._check_network()
        self.stages()  # validates the rest (shortcut kind, ...)

    def stages(self) -> StageSpec:
        n = len(self.depths)
        return StageSpec(
            block=self.block,
            depths=self.depths,
            widths=self.widths,
            group_widths=tuple(int(round(w * self.bottleneck)) // self.groups for w in self.widths),
            bottlenecks=(self.bottleneck,) * n,
            strides=(1,) + (2,) * (n - 1),
            **self.network_fields(),
            stem=self.stem,
            shortcut=self.shortcut,
        )


def _rs(depths, resolution) -> ResNetSpec:
    return ResNetSpec(
        depths, stem="deep-conv", shortcut="avgpool", se_ratio=0.25, resolution=resolution
    )


# Registry entries: name -> spec.
MODELS: dict[str, ResNetSpec] = {
    "ResNet-18": ResNetSpec((2, 2, 2, 2), block="RB"),
    "ResNet-34": ResNetSpec((3, 4, 6, 3), block="RB"),
    "ResNet-50": ResNetSpec((3, 4, 6, 3)),
    "ResNet-101": ResNetSpec((3, 4, 23, 3)),
    "ResNet-152": ResNetSpec((3, 8, 36, 3)),
    "ResNet-200": ResNetSpec((3, 24, 36, 3)),
    "ResNeXt-50-32x4d": ResNetSpec((3, 4, 6, 3), bottleneck=0.5, groups=32),
    "ResNeXt-101-32x4d": ResNetSpec((3, 4, 23, 3), bottleneck=0.5, groups=32),
    "ResNeXt-152-32x4d": ResNetSpec((3, 8, 36, 3), bottleneck=0.5, groups=32),
    "ResNet-50-D": ResNetSpec((3, 4, 6, 3), stem="deep", shortcut="avgpool"),
    "SE-ResNet-50": ResNetSpec((3, 4, 6, 3), se_ratio=1 / 16),
    "ResNet-RS-50": _rs((3, 4, 6, 3), 160),
    "ResNet-RS-101": _rs((3, 4, 23, 3), 192),
    "ResNet-RS-152": _rs((3, 8, 36, 3), 256),
    "ResNet-RS-200": _rs((3, 24, 36, 3), 256),
    "ResNet-RS-270": _rs((4, 29, 53, 4), 256),
    "ResNet-RS-350": _rs((4, 36, 72, 4), 288),
    "ResNet-RS-420": _rs((4, 44, 87, 4), 320),
}
# The same architectures in timm and torchvision (parameter counts equal; tests/test_interop.py).
TIMM_NAMES = {
    "ResNet-18": "resnet18",
    "ResNet-34": "resnet34",
    "ResNet-50": "resnet50",
    "ResNet-101": "resnet101",
    "ResNet-152": "resnet152",
    "ResNet-200": "resnet200",
    "ResNeXt-50-32x4d": "resnext50_32x4d",
    "ResNeXt-101-32x4d": "resnext101_32x4d",
    "ResNet-50-D": "resnet50d",
    "SE-ResNet-50": "seresnet50",
    **{f"ResNet-RS-{d}": f"resnetrs{d}" for d in (50, 101, 152, 200, 270, 350, 420)},
}
# torchvision has fewer of them, under the names timm gives them
TORCHVISION_NAMES = {
    name: TIMM_NAMES[name]
    for name in ("ResNet-18", "ResNet-34", "ResNet-50", "ResNet-101", "ResNet-152",
                 "ResNeXt-50-32x4d")
}  # fmt: skip
