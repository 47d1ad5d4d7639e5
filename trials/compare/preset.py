"""Comparison presets: documented YAML files (trials/compare/presets/*.yaml) or a user's own file.

A preset fixes everything a scaling-vs-search-vs-hybrid comparison needs: the data, the
design space(s), the base model, the regime ladder (base → intermediate → top), the number
of searched samples, the scaling strategies, the recipe, the finalists' schedule and seeds
(the seed-to-seed spread comes from them) and the resources per trial. See docs/compare.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spaces.errors import FastscaleError
from spaces.io import parse_data, read_text_file
from trials.study.early_stop import EarlyStop, settings
from trials.study.store import StudyError

PRESET_DIR = Path(__file__).parent / "presets"


class PresetError(FastscaleError):
    """An unknown preset name or a malformed preset file; the message lists what is allowed."""


@dataclass(frozen=True)
class Finalists:
    """Which models are retrained, with what schedule and which extra training seeds."""

    epochs: int
    seeds: tuple[int, ...]
    select: str = "best-per-method"
    levels: tuple[str, ...] = ("intermediate", "top")


@dataclass(frozen=True)
class Preset:
    name: str
    dataset: str | None
    resolution: int
    spaces: tuple[str, ...]
    base: dict
    regimes: dict  # level -> flops (int)
    samples: int
    strategies: tuple[str, ...]
    train: dict
    tolerance: float = 0.02
    seed: int = 0
    finalists: Finalists | None = None
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    parallel: dict = field(default_factory=dict)  # workers_per_trial, cpus/gpus_per_worker, ...
    description: str = ""
    source: str = ""
    labels: dict = field(default_factory=dict)  # level -> "40MF"
    early_stop: dict = field(default_factory=dict)  # trials.study.early_stop settings

    def label(self, level: str) -> str:
        return self.labels[level]

    def to_dict(self) -> dict:
        fin = self.finalists
        return {
            "name": self.name,
            "description": self.description,
            "dataset": self.dataset,
            "resolution": self.resolution,
            "spaces": list(self.spaces),
            "base": self.base,
            "regimes": dict(self.labels),
            "tolerance": self.tolerance,
            "samples": self.samples,
            "strategies": list(self.strategies),
            "seed": self.seed,
            "train": self.train,
            "finalists": None
            if fin is None
            else {
                "epochs": fin.epochs,
                "seeds": list(fin.seeds),
                "select": fin.select,
                "levels": list(fin.levels),
            },
            "resources": {
                "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial,
                **self.parallel,
            },
            **({"early_stop": self.early_stop} if self.early_stop else {}),
        }


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def parse_preset(data, where: str) -> Preset:
    """Validate a preset mapping through its schema (trials.compare.preset_schema); every
    error is one line naming the file, the field path and what is allowed."""
    from spaces.schema import validate  # pydantic: kept off `fastscale --help`
    from trials.compare.preset_schema import PresetFile

    f = validate(PresetFile, data, where, PresetError)
    try:
        stop = (
            settings(**f.early_stop.model_dump(), epochs=f.train.get("epochs", 1))
            if (f.early_stop is not None)
            else None
        )
    except StudyError as exc:
        raise PresetError(f"{where}: early_stop: {exc}") from None
    fin = f.finalists
    return Preset(
        name=f.name if f.name is not None else Path(where).stem,
        description=f.description,
        dataset=f.dataset,
        resolution=f.resolution,
        spaces=tuple(f.spaces),
        base={space: entry.to_dict() for space, entry in f.base.items()},
        regimes=f.regimes.flops(),
        labels=f.regimes.labels(),
        tolerance=float(f.tolerance),
        samples=f.samples,
        strategies=tuple(f.strategies),
        seed=f.seed,
        train=dict(f.train),
        finalists=None
        if fin is None
        else Finalists(fin.epochs, tuple(fin.seeds), fin.select, tuple(fin.levels)),
        cpus_per_trial=f.resources.cpus_per_trial,
        gpus_per_trial=f.resources.gpus_per_trial,
        parallel=f.resources.parallel(),
        early_stop={} if stop is None else stop.to_dict(),
        source=where,
    )


def load_preset(ref: str | Path) -> Preset:
    """A preset by name (trials/compare/presets/NAME.yaml) or by path to a YAML file."""

    path = Path(ref)
    if len(str(ref)) > 4096:
        raise PresetError(f"preset name or path is {len(str(ref))} characters; too long")
    if not path.suffix and not path.exists():
        path = PRESET_DIR / f"{ref}.yaml"
        if not path.is_file():
            raise PresetError(
                f"unknown preset {str(ref)!r}; allowed: {', '.join(list_presets())} or a YAML file"
            )
    text = read_text_file(path, "preset", PresetError)
    data = parse_data(text, False, f"preset {str(path)!r}", PresetError)
    return parse_preset(data, str(path))


def preset_early_stop(preset: Preset) -> EarlyStop | None:
    """The preset's `early_stop:` mapping, if it has one."""
    data = getattr(preset, "early_stop", None)
    return EarlyStop.from_dict(data) if data else None


def early_stop_from_flags(
    preset: Preset, scheduler: str | None, grace_epochs: int | None, reduction_factor: int | None
) -> EarlyStop | None:
    """`compare`'s early-stop flags over the preset's early_stop; None when no flag is given
    (the preset's, or on a resume the stored one, applies)."""
    if scheduler is None and grace_epochs is None and reduction_factor is None:
        return None
    if scheduler == "fifo":
        return EarlyStop(grace_epochs=grace_epochs, reduction_factor=reduction_factor)
    base = preset_early_stop(preset) or EarlyStop()
    return EarlyStop(
        scheduler or base.scheduler,
        "none",
        base.grace_epochs if grace_epochs is None else grace_epochs,
        base.reduction_factor if reduction_factor is None else reduction_factor,
    )
