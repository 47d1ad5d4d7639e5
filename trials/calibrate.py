"""Calibrate a runtime profile on this machine (the paper's §4 and Figure 2; docs/planner.md).

Scale one model with several strategies and flop factors (planner), time every scaled model
one at a time (`trials.timing`), and fit time ≈ c0 + c_a·acts + c_f·flops
(`planner.profiles.fit_profile`). The profile's time is seconds per image of a training step
(or inference) at the timed batch size, or minutes per epoch of `epoch_images` images when
given (the unit of the shipped V100 profile), so `fastscale plan --profile FILE` can use it.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from spaces.errors import FastscaleError
from trials.recipe import check_memory
from trials.timing import time_model


class CalibrationError(FastscaleError):
    """Bad strategies, factors or output path for a calibration."""


MAX_FACTOR = 1000.0  # timing a model 1000x the base already takes 1000x as long


def parse_strategies(text: str) -> list[str]:
    from planner.strategies import get_strategy

    names = [s.strip() for s in str(text).split(",") if s.strip()]
    if not names:
        raise CalibrationError("--strategies needs at least one strategy name, e.g. w,dwr,dWr")
    for name in names:
        get_strategy(name)  # raises StrategyError with the allowed names
    return names


def parse_factors(text: str) -> list[float]:
    try:
        factors = [float(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise CalibrationError(f"--factors must be comma-separated numbers, got {text!r}") from None
    if not factors or not all(0 < f <= MAX_FACTOR for f in factors):  # NaN fails too
        raise CalibrationError(
            f"--factors must be numbers in (0, {MAX_FACTOR:g}] (flop factors), got {text!r}"
        )
    return factors


def hardware_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def check_writable(path: str | Path) -> Path:
    """Fail before the (long) timing if the profile could not be written (a device, FIFO or
    symlink at --out is refused as spaces.safe_write would refuse it at the end)."""
    from spaces.safe_write import check_target

    path = Path(path)
    if path.is_dir():
        raise CalibrationError(f"--out {str(path)!r} is a directory; give a .json file path")
    parent = path.parent
    probe_dir = parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir() or not os.access(probe_dir, os.W_OK):
        raise CalibrationError(f"cannot write profile {str(path)!r}: {probe_dir} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise CalibrationError(f"cannot write profile {str(path)!r}: permission denied")
    return check_target(path)


def scaled_models(base, strategies, factors) -> list[tuple[str, float, object]]:
    """(strategy, factor, spec) for every pair; identical networks appear once."""
    from planner.scale import scale_spec

    seen, out = {}, []
    for name in strategies:
        for s in factors:
            spec = base.stages() if s == 1 else scale_spec(base, name, s)
            key = repr(spec.to_dict())
            if key in seen:
                continue
            seen[key] = True
            out.append((name, s, spec))
    return out


@dataclass
class Calibration:
    rows: list[dict]
    profile: object  # planner.profiles.RuntimeProfile
    loo_errors: list[float] = field(default_factory=list)
    path: str | None = None

    def within(self, tol: float = 0.10) -> int:
        return sum(e <= tol for e in self.loo_errors)

    def to_dict(self) -> dict:
        p = self.profile
        return {
            "profile": self.path,
            "rows": self.rows,
            "pearson": {
                "acts": p.pearson_acts,
                "flops": p.pearson_flops,
                "params": p.pearson_params,
            },
            "coefficients": {"c0": p.c0, "c_acts": p.c_acts, "c_flops": p.c_flops},
            "unit": p.unit,
            "mean_rel_error": p.mean_rel_error,
            "loo_rel_errors": self.loo_errors,
            "loo_mean_rel_error": p.loo_mean_rel_error,
            "loo_max_rel_error": p.loo_max_rel_error,
            "loo_within_10pct": self.within(0.10),
            "n": len(self.rows),
        }

    def table(self) -> list[dict]:
        return [
            {
                "strategy": r["strategy"],
                "s": r["factor"],
                "res": r["resolution"],
                "flops": r["flops"],
                "params": r["params"],
                "acts": r["acts"],
                f"time ({self.profile.unit})": r["time"],
                "spread": f"{r['spread']:.1%}",
                "loo err": f"{self.loo_errors[i]:.1%}" if self.loo_errors else None,
            }
            for i, r in enumerate(self.rows)
        ]

    def summary_lines(self) -> list[str]:
        p = self.profile

        def fmt(v, pct=False):
            return "n/a" if v is None else f"{v:.1%}" if pct else f"{v:.3f}"

        return [
            f"Pearson r of time vs acts {fmt(p.pearson_acts)}, vs flops {fmt(p.pearson_flops)}, "
            f"vs params {fmt(p.pearson_params)} ({len(self.rows)} models)",
            f"fit: time = {p.c0:.4g} + {p.c_acts:.4g}·acts + {p.c_flops:.4g}·flops [{p.unit}]; "
            f"in-sample mean error {p.mean_rel_error:.1%}",
            f"leave-one-out error: mean {fmt(p.loo_mean_rel_error, True)}, max "
            f"{fmt(p.loo_max_rel_error, True)}; {self.within(0.10)}/{len(self.loo_errors)} held-out "
            "models within ±10%",
            f"profile written to {self.path}" if self.path else "profile not saved",
        ]


def calibrate(
    base,
    strategies=("w", "dwr", "dWr"),
    factors=(1, 2, 4, 8),
    *,
    device: str = "cpu",
    batch_size: int = 32,
    mode: str = "train",
    repeats: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    rounds: int = 1,
    clock: str = "wall",
    epoch_images: int | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    progress=None,
) -> Calibration:
    """Time `base` scaled by every strategy × factor and fit a runtime profile (module doc).

    With `rounds` > 1 every model is timed once per round (models one at a time, rounds
    in turn) and the fastest round's median is kept: on a shared machine, load from other
    processes only adds time, and spreading rounds apart keeps one burst from hitting one model.
    """
    from planner.profiles import MIN_ROWS, fit_profile
    from trials.train import check_device

    check_device(device)
    if rounds < 1:
        raise CalibrationError(f"rounds must be >= 1, got {rounds}")
    path = check_writable(out) if out is not None else None
    strategies, factors = list(strategies), list(factors)
    models = scaled_models(base, strategies, factors)
    if len(models) < 3:
        raise CalibrationError(
            f"only {len(models)} distinct models from these strategies and factors; "
            "a profile needs at least 3 (add factors)"
        )
    for _, _, spec in models:  # the largest first fails fast, before any timing
        check_memory(spec, batch_size, train=mode == "train", device=device)
    scale = epoch_images / 60.0 if epoch_images else 1.0
    unit = "min/epoch" if epoch_images else "s/img"
    timed = [[] for _ in models]  # per model: one timing per round
    for rnd in range(rounds):
        for i, (strategy, s, spec) in enumerate(models):
            t = time_model(
                spec,
                batch_size=batch_size,
                device=device,
                mode=mode,
                repeats=repeats,
                warmup=warmup,
                threads=threads,
                clock=clock,
            )
            timed[i].append(t)
            if progress:
                where = f"{i + 1}/{len(models)}" + (
                    f" round {rnd + 1}/{rounds}" if rounds > 1 else ""
                )
                progress(
                    f"[{where}] {strategy} x{s:g}: {t['flops'] / 1e6:.0f} MF, "
                    f"{t['acts'] / 1e6:.2f} M acts, {t['seconds_per_batch'] * 1e3:.1f} ms/batch "
                    f"(spread {t['spread']:.1%})"
                )
    rows = []
    for (strategy, s, spec), runs in zip(models, timed, strict=True):
        # Other processes only ever add time: keep the least disturbed round.
        t = min(runs, key=lambda r: r["seconds_per_batch"])
        rows.append(
            {
                "name": f"{strategy} x{s:g}",
                "strategy": strategy,
                "factor": s,
                "resolution": spec.resolution,
                "flops": t["flops"],
                "params": t["params"],
                "acts": t["acts"],
                "time": t["seconds_per_image"] * scale,
                "seconds_per_batch": t["seconds_per_batch"],
                "spread": t["spread"],
                "rounds": [r["seconds_per_batch"] for r in runs],
                "spec": spec.to_dict(),
            }
        )
    meta = {
        "name": name or f"{device}-{mode}-b{batch_size}",
        "unit": unit,
        "hardware": hardware_name(device),
        "precision": "amp" if device == "cuda" else "fp32",
        "batch": batch_size,
        "mode": mode,
        "source": f"fastscale calibrate {getattr(base, 'family', '')} base at "
        f"{base.resolution}px, strategies {','.join(strategies)}, factors "
        f"{','.join(f'{f:g}' for f in factors)}, threads {t['threads']}, rounds {rounds}, {clock} clock",
    }
    fit_rows = [{k: r[k] for k in ("name", "flops", "params", "acts", "time")} for r in rows]
    profile = fit_profile(fit_rows, **meta)
    loo = []
    for i in range(len(fit_rows) if len(fit_rows) > MIN_ROWS else 0):
        held = fit_rows[:i] + fit_rows[i + 1 :]
        p = fit_profile(held, **meta)
        r = fit_rows[i]
        loo.append(abs(p.predict(r["acts"], r["flops"]) - r["time"]) / r["time"])
    result = Calibration(rows, profile, loo)
    if path is not None:
        profile.save(path)
        result.path = str(path)
    return result
