"""Calibrate a runtime profile on this machine (the paper's §4 and Figure 2; docs/planner.md).

Time a diverse set of networks one at a time (`trials.timing.calibration_set`: random RegNets X/Y/Z
at several resolutions, EfficientNets, scaled models of several strategies; plus the user's
model and its scaled copies when given), measure each one's peak training-step memory
(`trials.timing.memory`), and fit an `ops` profile (`planner.profiles.opmodel`): per-operation
costs for time and memory, with the linear acts + flops fit of the same rows beside it.
Every model is also predicted by a fit on all the others (leave-one-out), the held-out
check `calibrate` prints. The profile's time is seconds per image of a training step (or
inference) at the timed batch size, or minutes per epoch of `epoch_images` images when given.

`add` brings PyTorch models fastscale did not define (`trials.timing.outside.OutsideModel`):
timed under the same protocol, interleaved with the others, each becomes a row holding its
traced operation counts ("ops") instead of a spec, so the fit gets costs for kinds only
traced networks have (LayerNorm, GELU, matmul, ...; docs/planner.md "Outside models").
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path

from planner.profiles.coverage import calibrated_range
from planner.profiles.opfit import fit_ops_profile
from planner.strategies import get_strategy
from spaces.errors import FastscaleError
from spaces.safe_write import check_output_file
from trials.timing.calibration_set import (
    CalibrationModel,
    calibration_set,
    resolutions_for,
    scaled_copies,
)
from trials.timing.load import load_line
from trials.timing.outside import OutsideModel
from trials.timing.protocol import DEFAULT, TimingProtocol
from trials.timing.step_time import time_models
from trials.training.recipe import check_memory


class CalibrationError(FastscaleError):
    """Bad strategies, factors or output path for a calibration."""


MAX_FACTOR = 1000.0  # timing a model 1000x the base already takes 1000x as long


def parse_strategies(text: str) -> list[str]:
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


@dataclass
class Calibration:
    rows: list[dict]
    profile: object  # planner.profiles.RuntimeProfile of kind "ops"
    path: str | None = None
    load: dict | None = None  # trials.timing.load.load_report of the measurement

    @property
    def loo_errors(self) -> list[float]:
        return self.profile.fit["time"]["loo_rel_errors"]

    @property
    def round_spread(self) -> float | None:
        """Median over rows of (slowest round / fastest round - 1): how far this machine's
        readings of one network moved during the calibration, a floor under any held-out
        error (docs/planner.md, "Runtime and memory model"). None with one round."""
        spreads = [
            max(r["rounds"]) / min(r["rounds"]) - 1
            for r in self.rows
            if len(r.get("rounds") or ()) > 1 and min(r["rounds"]) > 0
        ]
        return statistics.median(spreads) if spreads else None

    def within(self, tol: float = 0.10) -> int:
        return sum(e <= tol for e in self.loo_errors)

    def to_dict(self) -> dict:
        p = self.profile
        return {
            "profile": self.path,
            "kind": p.kind,
            "rows": self.rows,
            "pearson": {
                "acts": p.pearson_acts,
                "flops": p.pearson_flops,
                "params": p.pearson_params,
            },
            "coefficients": {"c0": p.c0, "c_acts": p.c_acts, "c_flops": p.c_flops},
            "costs": p.costs,
            "memory": p.memory,
            "fit": p.fit,
            "unit": p.unit,
            "mean_rel_error": p.mean_rel_error,
            "loo_rel_errors": self.loo_errors,
            "loo_mean_rel_error": p.loo_mean_rel_error,
            "loo_max_rel_error": p.loo_max_rel_error,
            "loo_within_10pct": self.within(0.10),
            "round_spread": self.round_spread,
            "n": len(self.rows),
            "load": self.load,
        }

    def table(self) -> list[dict]:
        mem = (self.profile.fit.get("memory") or {}).get("loo_rel_errors")
        return [
            {
                "model": r["name"],
                "res": r["resolution"],
                "flops": r["flops"],
                "acts": r["acts"],
                "ms/step": r["seconds_per_step"] * 1e3,
                "spread": f"{r['spread']:.1%}",
                "MiB/step": None if r.get("memory_bytes") is None else r["memory_bytes"] / 2**20,
                "time held-out err": f"{self.loo_errors[i]:.1%}",
                "memory held-out err": None if mem is None else f"{mem[i]:.1%}",
            }
            for i, r in enumerate(self.rows)
        ]

    def summary_lines(self) -> list[str]:
        p, n = self.profile, len(self.rows)

        def fmt(v, pct=False):
            return "n/a" if v is None else f"{v:.1%}" if pct else f"{v:.3f}"

        lin, mem = p.fit["linear"], p.fit.get("memory")
        lines = [
            f"Pearson r of time vs acts {fmt(p.pearson_acts)}, vs flops {fmt(p.pearson_flops)}, "
            f"vs params {fmt(p.pearson_params)} ({n} models)",
            f"operation model: {sum(v > 0 for v in p.costs.values())} non-zero costs of "
            f"{len(p.costs)}; in-sample mean error {p.mean_rel_error:.1%}",
            f"held-out (each model left out of the fit): time error mean "
            f"{fmt(p.loo_mean_rel_error, True)}, max {fmt(p.loo_max_rel_error, True)}; "
            f"{self.within(0.10)}/{n} within ±10%",
            f"linear acts+flops fit of the same rows, held out: mean "
            f"{fmt(lin['loo_mean_rel_error'], True)}, max {fmt(lin['loo_max_rel_error'], True)}",
        ]
        if mem:
            lines.append(
                f"memory, held out: mean {fmt(mem['loo_mean_rel_error'], True)}, max "
                f"{fmt(mem['loo_max_rel_error'], True)}; "
                f"{sum(e <= 0.10 for e in mem['loo_rel_errors'])}/{n} within ±10%"
            )
        if self.round_spread is not None:
            lines.append(
                f"a network's slowest round was a median {self.round_spread:.0%} above its "
                "fastest: readings this machine moves by (predictions cannot be steadier)"
            )
        if self.load:
            lines.append(load_line(self.load))
        lines.append(f"profile written to {self.path}" if self.path else "profile not saved")
        return lines


def _time_all(models, protocol, progress, **timing) -> tuple[list[dict], dict]:
    """Every model under the timing protocol (interleaved rounds), memory in the first round."""

    def report(i, rnd, t):
        if not progress:
            return
        m = models[i]
        where = f"{i + 1}/{len(models)}" + (
            f" round {rnd + 1}/{protocol.rounds}" if protocol.rounds > 1 else ""
        )
        mem = t.get("memory_bytes")
        progress(
            f"[{where}] {m.name}: {t['flops'] / 1e6:.0f} MF, {t['acts'] / 1e6:.2f} M acts, "
            f"{t['seconds_per_batch'] * 1e3:.1f} ms/batch (spread {t['spread']:.1%}, "
            f"{len(t['warmup_times'])} warm-up)" + (f", {mem / 2**20:.0f} MiB" if mem else "")
        )

    specs = [m.spec for m in models]
    memory = timing["mode"] == "train"
    return time_models(specs, protocol, memory=memory, progress=report, **timing)


def _models(base, strategies, factors, diverse: bool, resolution, seed: int, added) -> list:
    """The diverse set (unless only `base` is asked for), `base`'s scaled copies, then the
    added outside models (`added_models`)."""

    models = calibration_set(resolution, seed) if diverse or base is None else []
    if base is not None:
        label = getattr(base, "family", "spec")
        models += scaled_copies(base, list(strategies), list(factors), label)
    models += added
    if len(models) < 3:
        raise CalibrationError(
            f"only {len(models)} distinct models from these strategies and factors; "
            "a profile needs at least 3 (add factors)"
        )
    return models


def added_models(names, shape=None, kwargs=None, resolution=None) -> list[CalibrationModel]:
    """Calibration models of outside models (`names`, each built with `kwargs`): at `shape`
    (C, H, W) when given, else with 3 channels at every resolution of the diverse set up to
    `resolution` (`calibration_set.resolutions_for`), so each kind they bring is timed at
    several sizes."""
    shapes = [tuple(shape)] if shape else [(3, r, r) for r in resolutions_for(resolution)]
    out = []
    for name in names:
        for s in shapes:
            m = OutsideModel(name, s, dict(kwargs or {}))
            out.append(CalibrationModel(f"{m.label}@{'x'.join(map(str, s))}", "traced", m))
    return out


def _row(model, t: dict) -> dict:
    """A calibration row from a model's protocol record (`time_models`): by default its
    fastest round (other processes only ever add time); memory measured in the first. An
    outside model's row holds its traced operation counts instead of a spec."""
    row = {
        "name": model.name,
        "family": model.family,
        "resolution": model.spec.resolution,
        **{k: t[k] for k in ("flops", "params", "acts", "seconds_per_batch", "spread")},
        "seconds_per_step": t["seconds_per_batch"],
        "memory_bytes": t.get("memory_bytes"),
        "rounds": t["rounds"],
        "cpu_share": t.get("cpu_share"),
    }
    if isinstance(model.spec, OutsideModel):
        counts = model.spec.trace().ops.counts
        return {
            **row,
            "traced": model.spec.to_dict(),
            "ops": {k: int(v) for k, v in counts.items()},
        }
    return {**row, "spec": model.spec.to_dict()}


def _describe(base, strategies, factors, diverse: bool, added) -> str:
    what = "the diverse set" if diverse or base is None else ""
    if base is not None:
        what += (
            f"{' + ' if what else ''}{getattr(base, 'family', '')} base at {base.resolution}px "
            f"scaled by {','.join(strategies)} x {','.join(f'{f:g}' for f in factors)}"
        )
    for name in dict.fromkeys(m.spec.name for m in added):
        what += f" + traced {name}"
    return what


def _meta(name, device, mode, batch_size, epoch_images, clock, protocol, timed, what) -> dict:
    """The profile's description of its own calibration."""
    threads = timed[0]["threads"]
    rounds = protocol.rounds
    return {
        "name": name or f"{device}-{mode}-b{batch_size}",
        "unit": "min/epoch" if epoch_images else "s/img",
        "epoch_images": epoch_images,
        "hardware": hardware_name(device),
        "precision": "amp" if device == "cuda" else "fp32",
        "mode": mode,
        "device": device,
        "clock": clock,
        "threads": threads,
        "source": f"fastscale calibrate: {what}; threads {threads}, rounds {rounds}, {clock} clock",
    }


def calibrate(
    base=None,
    strategies=("w", "dwr", "dWr"),
    factors=(1, 2, 4, 8),
    *,
    device: str = "cpu",
    batch_size: int = 32,
    mode: str = "train",
    threads: int | None = None,
    protocol: TimingProtocol = DEFAULT,
    clock: str = "wall",
    epoch_images: int | None = None,
    resolution: int | None = None,
    diverse: bool = True,
    seed: int = 0,
    out: str | Path | None = None,
    name: str | None = None,
    progress=None,
    add=(),
    add_shape=None,
    add_kwargs=None,
) -> Calibration:
    """Time the diverse calibration set (up to `resolution`, default 64 px) and, when `base`
    is given, `base` scaled by every strategy × factor; fit an `ops` profile (module doc).

    `diverse=False` times only `base`'s scaled copies. Every model is timed under `protocol`
    (`trials.timing.protocol`, the one `fastscale time` uses): interleaved rounds, warm-up
    until steady, the fastest round kept — load from other processes only adds time, and on
    a shared host one process' CPU seconds drift by 10-15 % over minutes (docs/planner.md),
    so rounds spread apart keep one slow spell off one model. The fit then sets aside
    readings still far slower than the others predict
    (`planner.profiles.opmodel.robust_nnls_fit`). `result.load` says how busy the machine
    was meanwhile (`trials.timing.load`).

    `add`: names of outside models to time too, built with `add_kwargs`, at `add_shape`
    (C, H, W) or else at the set's resolutions (`added_models`); their rows hold operation
    counts instead of specs (module doc).
    """
    from trials.training.device import check_device, check_threads

    check_device(device)
    if threads is not None:
        check_threads(threads)
    path = check_output_file(out) if out is not None else None  # before the (long) timing
    added = added_models(add, add_shape, add_kwargs, resolution)
    models = _models(base, strategies, factors, diverse, resolution, seed, added)
    for m in models:  # a model too large (or an outside one that fails) before any timing
        if isinstance(m.spec, OutsideModel):
            m.spec.trace()
        else:
            check_memory(m.spec, batch_size, train=mode == "train", device=device)
    timing = dict(batch_size=batch_size, device=device, mode=mode, threads=threads, clock=clock)
    timed, load = _time_all(models, protocol, progress, **timing)
    rows = [_row(m, t) for m, t in zip(models, timed, strict=True)]
    what = _describe(base, strategies, factors, diverse, added)
    meta = _meta(name, device, mode, batch_size, epoch_images, clock, protocol, timed, what)
    profile = fit_ops_profile(rows, batch=batch_size, **meta)
    # the range it was measured on, so predictions outside it can say so
    profile = dataclasses.replace(profile, calibrated_range=calibrated_range(profile))
    result = Calibration(list(profile.rows), profile, load=load)
    if path is not None:
        profile.save(path)
        result.path = str(path)
    return result
