"""Comparison presets: documented YAML files (trials/compare/presets/*.yaml) or a user's own file.

A preset fixes everything a scaling-vs-search-vs-hybrid comparison needs: the data, the
design space(s), the base model, the regime ladder (base → intermediate → top), the number
of searched samples, the scaling strategies, the recipe, the finalists' schedule and seeds
(the seed-to-seed spread comes from them) and the resources per trial. See docs/compare.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from planner.strategies import get_strategy
from spaces.errors import FastscaleError
from spaces.io import parse_data, read_text_file
from spaces.sampler import SPACES
from spaces.units import UnitError, format_quantity, parse_quantity
from trials.study.early_stop import EarlyStop, settings
from trials.study.store import StudyError
from trials.training.recipe import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
LEVELS = ("base", "intermediate", "top")
FIELDS = {
    "name": "preset name",
    "description": "one line",
    "dataset": "'fashion-mnist' or an ImageFolder path (null: --dataset must give it)",
    "resolution": "input resolution (px) of every searched and base model",
    "spaces": "design spaces to search: regnetx, regnety, regnetz",
    "base": "per space: {search: K} (best of K at the base regime) | {model: NAME} | {spec: {...}}",
    "regimes": "{base: 5MF, intermediate: 40MF, top: 160MF}",
    "tolerance": "regime window, fraction of the flops (sampler and solver)",
    "samples": "models searched per regime (-n overrides)",
    "strategies": "scaling strategies (planner names: w, dwr, dWr, ...)",
    "seed": "sampling seed (the training seed lives in train.seed)",
    "train": "TrainConfig fields for every first-round trial",
    "finalists": "{epochs, seeds, select: best-per-method|all, levels: [intermediate, top]} or null",
    "resources": "{cpus_per_trial, gpus_per_trial} or, for data-parallel trials, "
    "{workers_per_trial, cpus_per_worker, gpus_per_worker, placement: PACK|SPREAD}",
    "early_stop": "{scheduler: fifo|asha, grace_epochs, reduction_factor} (default fifo)",
}
FINALIST_FIELDS = ("epochs", "seeds", "select", "levels")
RESOURCE_FIELDS = (
    "cpus_per_trial",
    "gpus_per_trial",
    "workers_per_trial",
    "cpus_per_worker",
    "gpus_per_worker",
    "placement",
)
PARALLEL_FIELDS = RESOURCE_FIELDS[2:]  # study.run_study's data-parallel keywords
SELECTS = ("best-per-method", "all")


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


def _need(cond, where: str, message: str) -> None:
    if not cond:
        raise PresetError(f"{where}: {message}")


def parse_preset(data, where: str) -> Preset:
    """Validate a preset mapping; every error names the field and the allowed values."""
    _check_fields(data, where)
    regimes = data["regimes"]
    flops = _regime_flops(regimes, where)
    spaces = _spaces(data, where)
    base = _base(data["base"], spaces, where)
    samples = data["samples"]
    _need(isinstance(samples, int) and samples >= 1, where, "samples must be an integer >= 1")
    strategies = _strategies(data["strategies"], where)
    train = _train(data, where)
    res = data["resolution"]
    _need(isinstance(res, int) and res >= 8, where, "resolution must be an integer >= 8")
    tol = data.get("tolerance", 0.02)
    _need(isinstance(tol, int | float) and 0 < tol < 1, where, "tolerance must be in (0, 1)")
    resources = data.get("resources") or {}
    _need(
        isinstance(resources, dict) and set(resources) <= set(RESOURCE_FIELDS),
        where,
        f"resources allows {', '.join(RESOURCE_FIELDS)}",
    )
    return Preset(
        name=str(data.get("name", Path(where).stem)),
        description=str(data.get("description", "")),
        dataset=data.get("dataset"),
        resolution=res,
        spaces=tuple(spaces),
        base=base,
        regimes=flops,
        labels={
            lv: regimes[lv] if isinstance(regimes[lv], str) else format_quantity(flops[lv], "F")
            for lv in LEVELS
        },
        tolerance=float(tol),
        samples=samples,
        strategies=tuple(str(s) for s in strategies),
        seed=int(data.get("seed", 0)),
        train=dict(train),
        finalists=_finalists(data.get("finalists"), where),
        cpus_per_trial=resources.get("cpus_per_trial", 1),
        gpus_per_trial=resources.get("gpus_per_trial", 0),
        parallel=_parallel(resources, where),
        early_stop=_early_stop(data.get("early_stop"), train, where),
        source=where,
    )


def _parallel(resources: dict, where: str) -> dict:
    """The data-parallel resources of each trial (trials.study.runner.execute's keywords)."""
    par = {k: resources[k] for k in PARALLEL_FIELDS if k in resources}
    workers = par.get("workers_per_trial", 1)
    _need(
        isinstance(workers, int) and workers >= 1,
        where,
        "workers_per_trial must be an integer >= 1",
    )
    for name in ("cpus_per_worker", "gpus_per_worker"):
        value = par.get(name, 1)
        _need(isinstance(value, int | float) and value >= 0, where, f"{name} must be a number >= 0")
    _need(
        par.get("placement", "PACK") in ("PACK", "SPREAD"),
        where,
        "placement must be PACK or SPREAD",
    )
    return par


def _check_fields(data, where: str) -> None:
    """A mapping with only known fields and every required one."""
    _need(isinstance(data, dict), where, "a preset must be a mapping of fields")
    unknown = sorted(set(data) - set(FIELDS))
    _need(
        not unknown,
        where,
        f"unknown field(s) {', '.join(map(str, unknown))}; allowed: " + ", ".join(FIELDS),
    )
    required = ("resolution", "spaces", "base", "regimes", "samples", "strategies", "train")
    missing = [k for k in required if k not in data]
    _need(
        not missing,
        where,
        f"missing field(s) {', '.join(missing)}; "
        + "; ".join(f"{k}: {FIELDS[k]}" for k in missing),
    )


def _regime_flops(regimes, where: str) -> dict:
    """{level: flops} of the regime ladder, which must grow from base to top."""
    _need(
        isinstance(regimes, dict) and set(regimes) == set(LEVELS),
        where,
        f"regimes must map exactly {', '.join(LEVELS)} to flops, e.g. {FIELDS['regimes']}",
    )
    flops = {}
    for level in LEVELS:
        try:
            flops[level] = parse_quantity(regimes[level], what=f"regimes.{level}")
        except UnitError as exc:
            raise PresetError(f"{where}: {exc}") from None
    _need(
        flops["base"] < flops["intermediate"] < flops["top"],
        where,
        "regimes must grow: base < intermediate < top",
    )
    return flops


def _spaces(data: dict, where: str) -> list:
    spaces = data["spaces"]
    spaces = [spaces] if isinstance(spaces, str) else spaces
    _need(
        isinstance(spaces, list) and spaces and all(s in SPACES for s in spaces),
        where,
        f"spaces must be a list drawn from {', '.join(SPACES)}, got {data['spaces']!r}",
    )
    return spaces


def _base(base, spaces: list, where: str) -> dict:
    """One base entry per space: {search: K}, {model: NAME} or {spec: {...}}."""
    _need(
        isinstance(base, dict) and set(base) == set(spaces),
        where,
        f"base must give one entry per space ({', '.join(spaces)}): {FIELDS['base']}",
    )
    for space, entry in base.items():
        _need(
            isinstance(entry, dict)
            and len(entry) == 1
            and next(iter(entry)) in ("search", "model", "spec"),
            where,
            f"base.{space} must be one of {{search: K}}, {{model: NAME}}, {{spec: {{...}}}}",
        )
    return base


def _strategies(strategies, where: str) -> list:
    """A non-empty list of planner strategy names."""

    _need(
        isinstance(strategies, list) and strategies,
        where,
        "strategies must be a non-empty list, e.g. [w, dwr, dWr]",
    )
    for s in strategies:
        try:
            get_strategy(str(s))
        except FastscaleError as exc:
            raise PresetError(f"{where}: strategies: {exc}") from None
    return strategies


def _train(data: dict, where: str) -> dict:
    """The TrainConfig fields of the first round (checked with the preset's dataset)."""

    train = data["train"]
    _need(isinstance(train, dict), where, "train must be a mapping of TrainConfig fields")
    try:
        TrainConfig.from_dict({**train, "dataset": data.get("dataset") or "fashion-mnist"})
    except (FastscaleError, TypeError) as exc:
        raise PresetError(f"{where}: train: {exc}") from None
    return train


def _early_stop(data, train: dict, where: str) -> dict:
    """Validated `early_stop:` settings (trials.study.early_stop); {} when absent."""

    if data is None:
        return {}
    keys = ("scheduler", "grace_epochs", "reduction_factor")
    allowed = f"early_stop allows {FIELDS['early_stop']}"
    _need(isinstance(data, dict) and set(data) <= set(keys), where, allowed)
    try:
        stop = settings(**{k: data.get(k) for k in keys}, epochs=train.get("epochs", 1))
    except StudyError as exc:
        raise PresetError(f"{where}: early_stop: {exc}") from None
    return stop.to_dict()


def _finalists(data, where: str) -> Finalists | None:
    if data is None:
        return None
    _need(
        isinstance(data, dict)
        and set(data) <= set(FINALIST_FIELDS)
        and "epochs" in data
        and "seeds" in data,
        where,
        f"finalists must be null or a mapping with "
        f"{', '.join(FINALIST_FIELDS)} (epochs and seeds required)",
    )
    seeds = data["seeds"]
    _need(
        isinstance(seeds, list) and all(isinstance(s, int) for s in seeds),
        where,
        "finalists.seeds must be a list of integers (training seeds)",
    )
    select = data.get("select", "best-per-method")
    _need(select in SELECTS, where, f"finalists.select must be one of {', '.join(SELECTS)}")
    levels = tuple(data.get("levels", ("intermediate", "top")))
    _need(
        set(levels) <= {"intermediate", "top"},
        where,
        "finalists.levels must be drawn from intermediate, top",
    )
    epochs = data["epochs"]
    _need(isinstance(epochs, int) and epochs >= 1, where, "finalists.epochs must be >= 1")
    return Finalists(epochs, tuple(seeds), select, levels)


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
