"""Scaling strategies (the paper's §3-5; docs/planner.md): how a flop factor s splits over depth, width, group
width and resolution.

Every strategy is a weight vector (d, w, g, r). With S = d + w + r the factors are
depth s^(d/S), width s^(w/2S), group width s^(g/2S), resolution s^(r/2S), so flops grow
by d/S + 2·w/2S + 2·r/2S = 1 power of s. The α family, the named strategies and
EfficientNet's compound rule are all points of this one form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from spaces.errors import FastscaleError

# Per-φ multipliers of EfficientNet's compound rule (depth, width, resolution).
EFFNET_DWR = (1.2, 1.1, 1.15)
EFFNET_BASE = EFFNET_DWR[0] * EFFNET_DWR[1] ** 2 * EFFNET_DWR[2] ** 2  # flops per φ, ≈ 1.92

# ResNet-RS (Bello et al. 2021) grows depth and resolution with width fixed. Fitting
# log(depth factor) and log(resolution factor) against log(flop factor) over the registered
# RS family (RS-50@160 ... RS-420@320), normalised so flops grow as s^1, gives depth s^0.614
# and resolution s^0.193 (docs/planner.md shows the fit; a test re-derives it).
RS_DEPTH_SHARE = 0.614

_WEIGHT_TOKEN = re.compile(r"^([dwgr])(\d+(?:\.\d+)?|\.\d+)$")


class StrategyError(FastscaleError):
    """An unknown strategy name, a malformed weight string or an α outside [0, 1]."""


@dataclass(frozen=True)
class Strategy:
    """Weights over depth, width, group width and resolution; `alpha` when in the α family."""

    name: str
    d: float
    w: float
    g: float
    r: float
    alpha: float | None = None

    def __post_init__(self):
        for k in ("d", "w", "g", "r"):
            v = float(getattr(self, k))
            if not (v >= 0 and math.isfinite(v)):
                raise StrategyError(f"strategy weight {k} must be a finite number >= 0, got {v}")
            object.__setattr__(self, k, v)
        if self.d + self.w + self.r <= 0:
            raise StrategyError(
                f"strategy {self.name!r} scales nothing: give d, w or r a positive weight"
            )

    @property
    def exponents(self) -> tuple[float, float, float, float]:
        """(e_d, e_w, e_g, e_r): each factor is s**e."""
        total = self.d + self.w + self.r
        return self.d / total, self.w / (2 * total), self.g / (2 * total), self.r / (2 * total)

    def factors(self, s):
        """(f_d, f_w, f_g, f_r) for a scalar or an array of flop factors s."""
        s = np.asarray(s, dtype=np.float64) if not isinstance(s, int | float) else float(s)
        return tuple(np.power(s, e) for e in self.exponents)

    @property
    def width_share(self) -> float:
        """Share of the flop growth spent on width: α for the α family (0 for d, 1 for w)."""
        return self.w / (self.d + self.w + self.r)

    def same_as(self, other: Strategy) -> bool:
        """Same factors for every s (names aside): e.g. dWr and alpha 0.8."""
        return all(
            abs(a - b) <= 1e-12 for a, b in zip(self.exponents, other.exponents, strict=True)
        )

    def describe(self) -> str:
        e_d, e_w, e_g, e_r = self.exponents
        return f"depth s^{e_d:.3g}, width s^{e_w:.3g}, group s^{e_g:.3g}, resolution s^{e_r:.3g}"


def alpha_strategy(alpha: float, name: str | None = None) -> Strategy:
    """The α family: depth s^((1-α)/2), width s^(α/2), resolution s^((1-α)/4), g like w."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise StrategyError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
    if not 0.0 <= a <= 1.0:
        raise StrategyError(f"alpha must be in [0, 1], got {alpha!r}")
    return Strategy(name or f"alpha={a:g}", (1 - a) / 2, a, a, (1 - a) / 2, alpha=a)


def _effnet() -> Strategy:
    # s = EFFNET_BASE**φ; the weights make each factor exactly 1.2**φ, 1.1**φ, 1.15**φ.
    a, b, c = (math.log(x) for x in EFFNET_DWR)
    return Strategy("effnet", a, 2 * b, 2 * b, 2 * c)


_NAMED = {
    "d": lambda: Strategy("d", 1, 0, 0, 0),
    "w": lambda: Strategy("w", 0, 1, 1, 0, alpha=1.0),
    "r": lambda: Strategy("r", 0, 0, 0, 1),
    "dw": lambda: Strategy("dw", 1, 1, 1, 0),
    "dr": lambda: Strategy("dr", 1, 0, 0, 1, alpha=0.0),
    "wr": lambda: Strategy("wr", 0, 1, 1, 1),
    "dwr": lambda: Strategy("dwr", 1, 1, 1, 1, alpha=1 / 3),
    "dWr": lambda: Strategy("dWr", 1, 8, 8, 1, alpha=0.8),
    "effnet": _effnet,
    "rs": lambda: Strategy("rs", RS_DEPTH_SHARE, 0, 0, 1 - RS_DEPTH_SHARE),
}


def strategy_names() -> list[str]:
    """The named strategies, in the order help texts list them."""
    return list(_NAMED)


def allowed_help() -> str:
    return f"one of {', '.join(_NAMED)}, a weight string such as d1_w8_g8_r1, or an alpha in [0, 1]"


def parse_weights(text: str) -> Strategy:
    """`d1_w8_g8_r1`: a weight per letter, as pycls' scaler reads it — an omitted letter has
    weight 0 (so `d1_w8_r1` keeps the group width; write g8 to scale it like the width)."""
    weights: dict[str, float] = {}
    for token in text.split("_"):
        m = _WEIGHT_TOKEN.match(token)
        if not m or m.group(1) in weights:
            raise StrategyError(f"unknown strategy {text!r}; use {allowed_help()}")
        weights[m.group(1)] = float(m.group(2))
    d, w, g, r = (weights.get(k, 0.0) for k in "dwgr")
    total = d + w + r
    alpha = w / total if total and d == r and g == w else None
    return Strategy(text, d, w, g, r, alpha=alpha)


def get_strategy(name: str | None = None, alpha: float | None = None) -> Strategy:
    """A strategy by name (case matters: dWr is fast scaling, dwr uniform), weight string or α.

    With neither, the paper's recommended default dWr (α = 0.8).
    """
    if name is not None and alpha is not None:
        raise StrategyError("give a strategy name or an alpha, not both")
    if alpha is not None:
        return alpha_strategy(alpha)
    if name is None:
        return _NAMED["dWr"]()
    if isinstance(name, Strategy):
        return name
    if name in _NAMED:
        return _NAMED[name]()
    if "_" in name or _WEIGHT_TOKEN.match(name):
        return parse_weights(name)
    raise StrategyError(f"unknown strategy {name!r}; use {allowed_help()}")


def alpha_grid(step: float = 0.05) -> list[float]:
    """The default α grid 0, 0.05, ..., 1 (exact decimals, so 0.8 is dWr)."""
    n = int(round(1 / step))
    return [round(i / n, 10) for i in range(n + 1)]
