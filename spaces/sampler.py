"""Seeded regime sampler (the RegNet paper's design space; docs/models.md): draw RegNets in large numpy batches, count them all
at once, keep the valid, distinct, 4-stage ones whose flops fall inside the regime window."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spaces.blocks import BLOCKS
from spaces.complexity import regnet_complexity_batch, regnet_stage_count
from spaces.errors import FastscaleError
from spaces.generate import compat, quantized_widths, round_group_width
from spaces.specs import RegNetSpec


class SamplerError(FastscaleError):
    """The regime cannot be filled within the draw budget."""


@dataclass(frozen=True)
class Range:
    """A sampled parameter: [low, high], log-uniform or uniform, quantized to `step`."""

    low: float
    high: float
    log: bool = True
    step: float = 1.0

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.log:
            v = np.exp(rng.uniform(np.log(self.low), np.log(self.high), n))
        else:
            v = rng.uniform(self.low, self.high + self.step, n)
            v = np.floor((v - self.low) / self.step) * self.step + self.low
        return np.clip(np.round(np.round(v / self.step) * self.step, 6), self.low, self.high)


# Named RegNet spaces: block and the ranges that differ from the published defaults. Z reaches
# the small group widths of the published Z models (rounded by the §6 group-width rule).
SPACES = {
    "regnetx": ("X", {}),
    "regnety": ("Y", {}),
    "regnetz": ("Z", {"group_width": Range(1, 64, step=1), "round_groups": True}),
}


@dataclass(frozen=True)
class DesignSpace:
    """The published RegNet design space; every range is configurable."""

    block: str = "Y"
    depth: Range = Range(12, 28, log=False, step=1)
    w0: Range = Range(8, 256, step=8)
    wa: Range = Range(8.0, 256.0, step=0.1)
    wm: Range = Range(2.0, 3.0, step=0.001)
    group_width: Range = Range(8, 128, step=8)
    resolution: Range | int = 224
    stages: int = 4
    round_groups: bool = False  # apply the group-width rounding rule to drawn group widths
    fixed: dict = field(default_factory=dict)  # other RegNetSpec fields (head_width, ...)

    @classmethod
    def named(cls, name: str, **changes) -> DesignSpace:
        key = name.lower()
        if key not in SPACES:
            raise SamplerError(f"unknown space {name!r}; allowed: {', '.join(SPACES)}")
        block, defaults = SPACES[key]
        return cls(block=block, **{**defaults, **changes})

    def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        g = self.group_width.draw(rng, n)
        cols = {
            "depth": self.depth.draw(rng, n).astype(np.int64),
            "w0": self.w0.draw(rng, n).astype(np.int64),
            "wa": self.wa.draw(rng, n),
            "wm": self.wm.draw(rng, n),
            "group_width": round_group_width(g) if self.round_groups else g.astype(np.int64),
        }
        res = self.resolution
        cols["resolution"] = (
            res.draw(rng, n).astype(np.int64) if isinstance(res, Range) else np.full(n, int(res))
        )
        return cols


def _arch_keys(cols: dict[str, np.ndarray], block: str, b: float) -> np.ndarray:
    """One row per config describing the generated network, for dropping duplicates."""
    raw, _, active = quantized_widths(
        cols["depth"], cols["w0"], cols["wa"], cols["wm"], max_depth=28
    )
    widths, groups = compat(raw, b, cols["group_width"][:, None])
    widths = np.where(active, widths, 0)
    groups = np.where(active, groups, 0)
    return np.concatenate([widths, groups, cols["resolution"][:, None]], axis=1)


def sample(
    space: DesignSpace | str,
    regime: float,
    n: int = 32,
    tolerance: float = 0.01,
    seed: int = 0,
    max_params: int | None = None,
    max_acts: int | None = None,
    batch: int = 8192,
    max_draws: int = 2_000_000,
) -> list[dict]:
    """N in-regime specs with their complexity: [{"spec": RegNetSpec, "flops", "params", "acts"}].

    Deterministic for a seed: draws happen in fixed-size batches and are kept in draw order.
    """
    if isinstance(space, str):
        space = DesignSpace.named(space)
    if not 0 < tolerance < 1:
        raise SamplerError(f"tolerance must be in (0, 1), got {tolerance}")
    if n < 1:
        raise SamplerError(f"n must be >= 1, got {n}")
    lo, hi = regime * (1 - tolerance), regime * (1 + tolerance)
    rng = np.random.default_rng(seed)
    kept: list[dict] = []
    seen: set[bytes] = set()  # the architecture keys kept so far
    drawn, lowest, highest = 0, np.inf, 0.0  # flops seen among valid draws
    bottleneck = float(space.fixed.get("bottleneck", BLOCKS[space.block].bottleneck))
    while len(kept) < n and drawn < max_draws:
        cols = space.draw(rng, batch)
        drawn += batch
        num_stages, valid = regnet_stage_count(cols["depth"], cols["w0"], cols["wa"], cols["wm"])
        cols = {k: v[valid & (num_stages == space.stages)] for k, v in cols.items()}
        cx = regnet_complexity_batch(space.block, **cols, **space.fixed)
        if len(cols["depth"]):
            lowest = min(lowest, float(cx["flops"].min()))
            highest = max(highest, float(cx["flops"].max()))
        ok = (cx["flops"] >= lo) & (cx["flops"] <= hi)
        if max_params is not None:
            ok &= cx["params"] <= max_params
        if max_acts is not None:
            ok &= cx["acts"] <= max_acts
        if not kept and drawn >= 100_000 and (hi < lowest or lo > highest):
            break  # the regime lies outside everything this space produces: stop early
        if not kept and drawn >= 3 * batch and (hi < lowest / 4 or lo > 4 * highest):
            break  # ... far outside: a few batches tell already
        _keep_distinct(space, cols, cx, np.flatnonzero(ok), bottleneck, seen, kept, n)
    if len(kept) < n:
        seen_range = f"{lowest:.3g}..{highest:.3g}" if highest else "none valid"
        raise SamplerError(
            f"only {len(kept)} of {n} models found in [{lo:.4g}, {hi:.4g}] flops after {drawn} "
            f"draws (valid {space.stages}-stage flops seen: {seen_range}); widen --tolerance, "
            "change the regime or relax the constraints"
        )
    return kept


def _keep_distinct(space, cols, cx, idx, bottleneck, seen: set, kept: list, n: int) -> None:
    """Append the draws `idx` whose network was not kept before, in draw order, up to n."""
    if not len(idx):
        return
    keys = _arch_keys({k: v[idx] for k, v in cols.items()}, space.block, bottleneck)
    for row, i in enumerate(idx):
        key = keys[row].tobytes()
        if key in seen:
            continue
        seen.add(key)
        spec = RegNetSpec(
            space.block,
            int(cols["depth"][i]),
            int(cols["w0"][i]),
            float(cols["wa"][i]),
            float(cols["wm"][i]),
            int(cols["group_width"][i]),
            resolution=int(cols["resolution"][i]),
            **space.fixed,
        )
        kept.append(
            {
                "spec": spec,
                "flops": int(cx["flops"][i]),
                "params": int(cx["params"][i]),
                "acts": int(cx["acts"][i]),
            }
        )
        if len(kept) == n:
            return
