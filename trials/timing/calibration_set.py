"""The diverse calibration set of `fastscale calibrate` (docs/planner.md, "Calibrating").

An operation-cost model is only identifiable from networks whose operation mix varies:
scaled copies of one base move every count together, so their timings cannot tell a group
conv's cost from a BatchNorm's. The set mixes, deterministically for a seed:

- random RegNetX, RegNetY and RegNetZ from the published design space (the regime sampler)
  at two flop regimes, each at one of several resolutions (group, depthwise and dense convs,
  ReLU and SiLU, with and without SE, shallow-wide and deep-narrow);
- EfficientNet-B0 and a compound-scaled copy (depthwise k×k convs, MBConv);
- one sampled RegNetY scaled with several strategies (w, d, dwr, dWr): the shapes scaling
  produces (wide, deep, high resolution);
- ResNet-18 and ResNet-50 at the smallest and largest resolution (dense 3×3 convs, the 7×7
  stem and its max-pool).

Resolutions are small so the whole set times in about a minute on one CPU core.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.scale import scale_spec
from spaces.errors import FastscaleError
from spaces.registry import get_model
from spaces.sampler import sample

REGIMES = (400e6, 1.6e9)  # flops at the design space's 224 px
SCALED = (("w", 4.0), ("d", 3.0), ("dwr", 4.0), ("dWr", 4.0))
PER_SPACE = 4  # sampled models per space and regime


@dataclass(frozen=True)
class CalibrationModel:
    name: str
    family: str  # regnetx, regnety, regnetz, efficientnet, or "spec" for the user's model
    spec: object


def resolutions_for(resolution: int | None) -> tuple[int, ...]:
    """Half, three quarters and all of the top resolution (default 64), multiples of 8."""
    top = int(resolution or 64)
    if top < 16:
        raise FastscaleError(f"the calibration set needs a resolution >= 16, got {top}")
    return tuple(sorted({max(16, round(top * f / 8) * 8) for f in (0.5, 0.75, 1.0)}))


def calibration_set(resolution: int | None = None, seed: int = 0) -> list[CalibrationModel]:
    """The default set (module doc) at resolutions up to `resolution` (default 64)."""

    res = resolutions_for(resolution)
    out: list[CalibrationModel] = []
    k = 0
    for i, space in enumerate(("regnetx", "regnety", "regnetz")):
        for j, regime in enumerate(REGIMES):
            for rec in sample(space, regime, PER_SPACE, 0.05, seed=seed * 100 + i * 10 + j):
                r = res[k % len(res)]
                k += 1
                name = f"{space}-{regime / 1e6:.0f}MF-{k}@{r}"
                out.append(CalibrationModel(name, space, rec["spec"].with_resolution(r)))
    b0 = get_model("EfficientNet-B0")
    out.append(
        CalibrationModel(f"EfficientNet-B0@{res[0]}", "efficientnet", b0.with_resolution(res[0]))
    )
    for strategy in ("effnet", "dWr"):
        scaled_b0 = scale_spec(b0.with_resolution(res[-1]), strategy, 2.0)
        name = f"EfficientNet-B0 {strategy} x2@{scaled_b0.resolution}"
        out.append(CalibrationModel(name, "efficientnet", scaled_b0))
    base = sample("regnety", REGIMES[0], 1, 0.05, seed=seed * 100 + 99)[0]["spec"]
    base = base.with_resolution(res[len(res) // 2])
    for strategy, factor in SCALED:
        spec = scale_spec(base, strategy, factor)
        name = f"regnety {strategy} x{factor:g}@{spec.resolution}"
        out.append(CalibrationModel(name, "regnety", spec))
    for model in ("ResNet-18", "ResNet-50"):
        for r in sorted({res[0], res[-1]}):
            spec = get_model(model).with_resolution(r)
            out.append(CalibrationModel(f"{model}@{r}", "resnet", spec))
    return out


def scaled_copies(base, strategies, factors, label: str = "spec") -> list[CalibrationModel]:
    """`base` itself, then `base` scaled by every strategy × factor; identical networks appear
    once. The base is always timed (whatever the factors): a profile is asked about the
    user's own model first, so its exact shapes must be among the rows it is fitted on."""

    seen, out = set(), []
    factors = [1.0, *(f for f in factors if f != 1)]
    for name in strategies:
        for s in factors:
            spec = base.stages() if s == 1 else scale_spec(base, name, s)
            key = repr(spec.to_dict())
            if key in seen:
                continue
            seen.add(key)
            what = f"{label} x1" if s == 1 else f"{label} {name} x{s:g}"
            out.append(CalibrationModel(what, "spec", spec))
    return out
