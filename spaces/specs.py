"""Frozen dataclass specs: RegNet parameters, the stage-level network, EfficientNet.

Every spec answers `.stages()` with a `StageSpec` (pycls calls it AnyNet): the one form that
complexity counting, the torch builder and the scaling rules work on.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import KW_ONLY, dataclass, field
from typing import ClassVar

import numpy as np

from spaces.blocks import BLOCKS, STEMS, Block
from spaces.errors import FastscaleError
from spaces.families import FAMILIES, register_family
from spaces.generate import compat, quantized_widths
from spaces.validate import dataclass_from_mapping

# The blocks a RegNet may use (its family's design space); every block's facts are in BLOCKS.
REGNET_BLOCKS = ("X", "Y", "Z")
# Keys a spec file may carry next to the spec (complexity written by `sample --out`, labels).
INFO_KEYS = ("flops", "params", "acts", "name", "factor")


class SpecError(FastscaleError):
    """A spec that cannot describe a network; the message says which field and what is allowed."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise SpecError(message)


MAX_WIDTH = 2**20  # channels; the widest published convnets use a few thousand
MAX_DEPTH = 10_000  # blocks per stage (and a RegNet's d); ResNet-RS-420's deepest stage has 87
# Each numeric spec field: (integer?, lowest, highest) — checked before any arithmetic, so
# a width of 1e20, a resolution of 10^9 or a string never reach the counters or generation.
FIELD_RANGES = {
    "resolution": (True, 8, 16384),
    "in_channels": (True, 1, 2**16),
    "num_classes": (True, 1, 10**7),
    "stem_width": (True, 1, MAX_WIDTH),
    "head_width": (True, 0, MAX_WIDTH),
    "se_ratio": (False, 0.0, 1.0),
    "depth": (True, 1, MAX_DEPTH),
    "w0": (True, 1, MAX_WIDTH),
    "wa": (False, 0.0, float(MAX_WIDTH)),
    "wm": (False, 1.0, 1000.0),
    "group_width": (True, 1, MAX_WIDTH),
    "bottleneck": (False, 0.0, 64.0),
    "depths": (True, 1, MAX_DEPTH),
    "widths": (True, 1, MAX_WIDTH),
    "group_widths": (True, 1, MAX_WIDTH),
    "bottlenecks": (False, 0.0, 64.0),
    "expansions": (False, 0.0, 64.0),
    "strides": (True, 1, 2),
    "kernels": (True, 1, 31),
}


def check_number(name: str, value, integer: bool, lo, hi):
    """`value` as a Python int (integer) or float within [lo, hi], or SpecError. Refuses
    bools, strings, NaN, infinities and non-integral numbers where an integer belongs."""
    kind = "an integer" if integer else "a number"
    lo, hi = (int(x) if float(x).is_integer() else x for x in (lo, hi))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"{name} must be {kind} in [{lo}, {hi}], got {value!r}")
    if not math.isfinite(float(value)) or not lo <= value <= hi:
        raise SpecError(f"{name} must be {kind} in [{lo}, {hi}], got {value!r}")
    if integer:
        if int(value) != value:
            raise SpecError(f"{name} must be {kind} in [{lo}, {hi}], got {value!r}")
        return int(value)
    return float(value)


def _normalize(spec) -> None:
    """Check and convert every numeric field of a spec in place (FIELD_RANGES), in file
    order, so that of several bad fields the first a file lists is the one reported."""
    types = {f.name: str(f.type) for f in dataclasses.fields(spec)}
    for name in spec.FILE_KEYS:
        if name not in FIELD_RANGES or getattr(spec, name) is None:
            continue
        integer, lo, hi = FIELD_RANGES[name]
        value = getattr(spec, name)
        if isinstance(value, list | tuple):
            value = tuple(check_number(name, v, integer, lo, hi) for v in value)
        elif types[name].startswith("tuple"):
            raise SpecError(f"{name} must be a list of numbers, got {value!r}")
        else:
            value = check_number(name, value, integer, lo, hi)
        object.__setattr__(spec, name, value)


def _default_stem_and_shortcut(spec, kind: Block) -> None:
    """An empty stem or shortcut ("") means the block's default: fill it in."""
    object.__setattr__(spec, "stem", spec.stem or kind.stem)
    object.__setattr__(spec, "shortcut", spec.shortcut or kind.shortcuts[0])


def _check_stem(spec) -> None:
    _check(spec.stem in STEMS, f"stem must be one of {', '.join(STEMS)}, got {spec.stem!r}")


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """What every spec has whatever its family: the input (resolution, channels), the stem and
    head widths, the SE ratio and the classes, and the behaviour they share (the spec-file
    mapping, `replace`, the block's row). A family subclasses it with its own parameters and
    redeclares a default where its published networks differ (ResNet's 64-channel stem).

    These fields are keyword-only so that a family's own parameters stay positional
    (`RegNetSpec("Y", 22, 96, 31.41, 2.24, 64)`). `FILE_KEYS` is the order a spec file lists
    a family's fields in: a file format, fixed apart from the class layout, so moving a field
    into this base changed no file (a test checks it names every field once).
    """

    family: ClassVar[str] = ""
    FILE_KEYS: ClassVar[tuple[str, ...]] = ()
    resolution: int = 224
    stem_width: int = 32
    head_width: int = 0
    se_ratio: float = 0.0
    in_channels: int = 3
    num_classes: int = 1000

    def network_fields(self) -> dict:
        """The fields above, as `.stages()` hands them on to the stage-level network."""
        return {name: getattr(self, name) for name in NETWORK_KEYS}

    def _check_network(self) -> None:
        _check(
            int(self.resolution) >= 8, f"resolution must be an integer >= 8, got {self.resolution}"
        )
        _check(int(self.in_channels) >= 1, f"in_channels must be >= 1, got {self.in_channels}")
        _check(int(self.num_classes) >= 1, f"num_classes must be >= 1, got {self.num_classes}")
        _check(int(self.stem_width) >= 1, f"stem_width must be >= 1, got {self.stem_width}")
        _check(int(self.head_width) >= 0, f"head_width must be >= 0, got {self.head_width}")
        _check(0 <= self.se_ratio < 1, f"se_ratio must be in [0, 1), got {self.se_ratio}")

    def __repr__(self) -> str:
        # in file order too, as before the shared fields moved here (subclasses: repr=False)
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FILE_KEYS)
        return f"{type(self).__qualname__}({shown})"

    def to_dict(self) -> dict:
        out = {"family": self.family}
        for name in self.FILE_KEYS:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def with_resolution(self, resolution: int):
        return dataclasses.replace(self, resolution=int(resolution))

    @property
    def kind(self) -> Block:
        """This spec's row of the block table."""
        return BLOCKS[self.block]

    @property
    def activation(self) -> str:
        return self.kind.activation


NETWORK_KEYS = tuple(f.name for f in dataclasses.fields(NetworkSpec))


@register_family
@dataclass(frozen=True, repr=False)
class RegNetSpec(NetworkSpec):
    """RegNet parameters (d, w0, wa, wm, g, b) + block type; generation gives the stages (§3).
    A bottleneck or SE ratio left None is the block's (Y has SE 0.25, X none)."""

    family = "regnet"
    FILE_KEYS = ("block", "depth", "w0", "wa", "wm", "group_width", "bottleneck", *NETWORK_KEYS)
    block: str
    depth: int
    w0: int
    wa: float
    wm: float
    group_width: int
    bottleneck: float = field(default=None)  # type: ignore[assignment]
    _: KW_ONLY
    se_ratio: float = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        _check(
            self.block in REGNET_BLOCKS,
            f"block must be one of {', '.join(REGNET_BLOCKS)}, got {self.block!r}",
        )
        b, se = BLOCKS[self.block].bottleneck, BLOCKS[self.block].se_ratio
        object.__setattr__(self, "bottleneck", b if self.bottleneck is None else self.bottleneck)
        object.__setattr__(self, "se_ratio", se if self.se_ratio is None else self.se_ratio)
        _normalize(self)
        for name in ("depth", "w0", "group_width", "resolution", "stem_width", "head_width"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "wa", float(self.wa))
        object.__setattr__(self, "wm", float(self.wm))
        _check(self.depth >= 1, f"depth must be >= 1, got {self.depth}")
        _check(
            self.w0 > 0 and self.w0 % 8 == 0, f"w0 must be a positive multiple of 8, got {self.w0}"
        )
        _check(self.wa >= 0, f"wa must be >= 0, got {self.wa:g}")
        _check(self.wm > 1, f"wm must be > 1, got {self.wm:g}")
        _check(self.bottleneck > 0, f"bottleneck must be > 0, got {self.bottleneck:g}")
        _check(self.group_width >= 1, f"group_width must be >= 1, got {self.group_width}")
        self._check_network()
        self.stages()  # validates stage indices

    def stages(self) -> StageSpec:
        """The stage-level network that generation gives; rejects a skipped stage index."""
        widths, ks, _ = quantized_widths([self.depth], [self.w0], [self.wa], [self.wm])
        widths, ks = widths[0], ks[0]
        stage_widths, depths = np.unique(widths, return_counts=True)
        if len(stage_widths) != ks.max() + 1:
            raise SpecError(
                f"RegNet parameters skip a stage index: {len(stage_widths)} distinct widths for "
                f"{int(ks.max()) + 1} stage indices (d={self.depth}, w0={self.w0}, "
                f"wa={self.wa:g}, wm={self.wm:g}); try a larger wm or wa"
            )
        n = len(stage_widths)
        ws, gs = compat(stage_widths, [self.bottleneck] * n, [self.group_width] * n)
        return StageSpec(
            block=self.block,
            depths=tuple(depths.tolist()),
            widths=tuple(ws.tolist()),
            group_widths=tuple(gs.tolist()),
            bottlenecks=(self.bottleneck,) * n,
            strides=(2,) * n,
            **self.network_fields(),
        )


@register_family
@dataclass(frozen=True, repr=False)
class StageSpec(NetworkSpec):
    """Per-stage depths, widths, group widths, bottlenecks, strides (and kernels).

    `bottlenecks` is the inner-width multiplier: b for X/Y/Z (w_b = round(w*b)) and the
    expansion ratio for MBConv (from the block input width). Group width 1 on MB is depthwise.
    """

    family = "anynet"
    FILE_KEYS = ("block", "depths", "widths", "group_widths", "bottlenecks", "strides",
                 "kernels", *NETWORK_KEYS, "stem", "shortcut")  # fmt: skip
    block: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    group_widths: tuple[int, ...]
    bottlenecks: tuple[float, ...]
    strides: tuple[int, ...]
    kernels: tuple[int, ...] = ()
    stem: str = ""  # "" = the block's default stem
    shortcut: str = ""  # "" = the block's default shortcut

    def __post_init__(self):
        _check(
            self.block in BLOCKS, f"block must be one of {', '.join(BLOCKS)}, got {self.block!r}"
        )
        _normalize(self)
        kind = BLOCKS[self.block]
        _default_stem_and_shortcut(self, kind)
        _check_stem(self)
        _check(
            self.shortcut in kind.shortcuts,
            f"shortcut of {self.block} blocks must be one of {', '.join(kind.shortcuts)}, "
            f"got {self.shortcut!r}",
        )
        n = len(self.depths)
        kernels = self.kernels or (3,) * n
        object.__setattr__(self, "kernels", tuple(int(k) for k in kernels))
        for name in ("depths", "widths", "group_widths", "strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "bottlenecks", tuple(float(b) for b in self.bottlenecks))
        _check(n >= 1, "a network needs at least one stage")
        for name in ("widths", "group_widths", "bottlenecks", "strides", "kernels"):
            _check(
                len(getattr(self, name)) == n,
                f"{name} has {len(getattr(self, name))} entries but depths has {n}; give one per stage",
            )
        _check(all(d >= 1 for d in self.depths), f"depths must be >= 1, got {self.depths}")
        _check(all(w >= 1 for w in self.widths), f"widths must be >= 1, got {self.widths}")
        _check(
            all(s in (1, 2) for s in self.strides), f"strides must be 1 or 2, got {self.strides}"
        )
        _check(all(k % 2 == 1 for k in self.kernels), f"kernels must be odd, got {self.kernels}")
        _check(all(b > 0 for b in self.bottlenecks), f"bottlenecks must be > 0: {self.bottlenecks}")
        self._check_network()
        if kind.depthwise:
            _check(
                all(g == 1 for g in self.group_widths),
                f"{self.block} blocks are depthwise: group_widths must all be 1, "
                f"got {self.group_widths}",
            )
            return
        for w, g, b in zip(self.widths, self.group_widths, self.bottlenecks, strict=True):
            inner = int(round(w * b))
            _check(inner >= 1, f"inner width round(w×b) must be >= 1 (w={w}, b={b:g})")
            if kind.group_rule == "single":
                _check(
                    g == inner,
                    f"{self.block} blocks have one group: group width must equal the inner "
                    f"width {inner} (w={w}, b={b:g}), got {g}",
                )
            _check(
                1 <= g <= inner,
                f"group width {g} must be in [1, {inner}] (stage width {w}×b {b:g})",
            )
            _check(
                inner % g == 0,
                f"group width {g} must divide the inner width {inner} (w={w}, b={b:g})",
            )

    def to_dict(self) -> dict:
        """As every spec, but a default stem or shortcut is left out (older files had none)."""
        out = super().to_dict()
        kind = BLOCKS[self.block]
        if out["stem"] == kind.stem:
            del out["stem"]
        if out["shortcut"] == kind.shortcuts[0]:
            del out["shortcut"]
        return out

    def stages(self) -> StageSpec:
        return self

    @property
    def depth(self) -> int:
        return sum(self.depths)


@register_family
@dataclass(frozen=True, repr=False)
class EfficientNetSpec(NetworkSpec):
    """EfficientNet (§4): MBConv stages with per-stage kernel, stride and expansion."""

    family = "efficientnet"
    FILE_KEYS = ("depths", "widths", "strides", "kernels", "expansions", *NETWORK_KEYS)
    block = "MB"
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    strides: tuple[int, ...] = (1, 2, 2, 2, 1, 2, 1)
    kernels: tuple[int, ...] = (3, 3, 5, 3, 5, 5, 3)
    expansions: tuple[float, ...] = (1, 6, 6, 6, 6, 6, 6)
    _: KW_ONLY
    head_width: int = 1280
    se_ratio: float = 0.25

    def __post_init__(self):
        _normalize(self)
        for name in ("depths", "widths", "strides", "kernels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "expansions", tuple(float(v) for v in self.expansions))
        _check(self.head_width >= 1, f"EfficientNet needs head_width >= 1, got {self.head_width}")
        self.stages()  # validates lengths and values

    def stages(self) -> StageSpec:
        n = len(self.depths)
        return StageSpec(
            block="MB",
            depths=self.depths,
            widths=self.widths,
            group_widths=(1,) * n,
            bottlenecks=self.expansions,
            strides=self.strides,
            kernels=self.kernels,
            **self.network_fields(),
        )


def spec_from_dict(data: dict) -> NetworkSpec:
    """Build a spec from a mapping (spec file entry); unknown keys are an error, not ignored.
    `family` picks the class from `FAMILIES` (every family once `spaces` is imported)."""
    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a mapping of fields, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if k not in INFO_KEYS}
    family = data.pop("family", "regnet" if "w0" in data else None)
    if not isinstance(family, str) or family not in FAMILIES:
        raise SpecError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    cls = FAMILIES[family]
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return dataclass_from_mapping(cls, data, f"{family} spec", SpecError, order=cls.FILE_KEYS)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"invalid {family} spec: {exc}") from None
