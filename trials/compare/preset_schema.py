"""The compare preset file format (docs/compare.md lists every field with its meaning).

Types, ranges and names are checked here, once, through spaces.schema: a string where a
number belongs, a negative resource count, an unknown base model or design space, a regime
ladder that does not grow, all end in one line naming the field. What needs the whole
request (the dataset on disk, the cluster's CPUs) is checked by trials.compare.run before
Ray starts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from planner.strategies import get_strategy
from spaces.registry import get_model
from spaces.sampler import SPACES
from spaces.schema import Int, Schema
from spaces.specs import spec_from_dict
from spaces.units import format_quantity, parse_quantity
from trials.training.recipe import TrainConfig

LEVELS = ("base", "intermediate", "top")
Space = Literal[tuple(SPACES)]
Quantity = str | Int | float  # "40MF", 40e6 or 40000000


class BaseEntry(Schema):
    """How a space's base model is found: best of K at the base regime, a zoo model, a spec."""

    search: Int | None = Field(None, ge=1)
    model: str | None = None
    spec: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("search", "model", "spec") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of {search: K}, {model: NAME}, {spec: {...}}")
        if self.model is not None:
            get_model(self.model)  # an unknown name is refused here, not on a cluster
        if self.spec is not None:
            spec_from_dict(self.spec)
        return self

    def to_dict(self) -> dict:
        return self.model_dump(exclude_none=True)


class Regimes(Schema):
    """The regime ladder, in flops; each level bigger than the one below."""

    base: Quantity
    intermediate: Quantity
    top: Quantity

    @field_validator("base", "intermediate", "top")
    @classmethod
    def _quantity(cls, value, info):
        parse_quantity(value, what=f"regimes.{info.field_name}")
        return value

    @model_validator(mode="after")
    def _grows(self):
        flops = self.flops()
        if not flops["base"] < flops["intermediate"] < flops["top"]:
            raise ValueError("regimes must grow: base < intermediate < top")
        return self

    def flops(self) -> dict:
        return {lv: parse_quantity(getattr(self, lv), what=f"regimes.{lv}") for lv in LEVELS}

    def labels(self) -> dict:
        flops = self.flops()
        return {
            lv: v if isinstance(v := getattr(self, lv), str) else format_quantity(flops[lv], "F")
            for lv in LEVELS
        }


class FinalistsEntry(Schema):
    """Which models are retrained with fresh seeds, and for how many epochs."""

    epochs: Int = Field(ge=1)
    seeds: list[Int]
    select: Literal["best-per-method", "all"] = "best-per-method"
    levels: list[Literal["intermediate", "top"]] = ["intermediate", "top"]


class Resources(Schema):
    """Per trial; the cluster must offer at least one trial's worth (checked before Ray).
    A data-parallel trial (docs/studies.md) names its workers and what each one takes."""

    cpus_per_trial: float = Field(1, gt=0)
    gpus_per_trial: float = Field(0, ge=0)
    workers_per_trial: Int | None = Field(None, ge=1)
    cpus_per_worker: float | None = Field(None, ge=0)
    gpus_per_worker: float | None = Field(None, ge=0)
    placement: Literal["PACK", "SPREAD"] | None = None

    def parallel(self) -> dict:
        """The data-parallel keywords the preset gives (trials.study's run settings)."""
        names = ("workers_per_trial", "cpus_per_worker", "gpus_per_worker", "placement")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


class EarlyStopEntry(Schema):
    """trials.study.early_stop settings: fifo (every candidate fully trained) or asha."""

    scheduler: str | None = None
    grace_epochs: Int | None = None
    reduction_factor: Int | None = None


class PresetFile(Schema):
    """A compare preset file: trials/compare/presets/*.yaml or a user's copy."""

    name: str | None = None
    description: str = ""
    dataset: str | None = None  # null: --dataset must give it
    resolution: Int = Field(ge=8)
    spaces: list[Space] = Field(min_length=1)
    base: dict[Space, BaseEntry]
    regimes: Regimes
    tolerance: float = Field(0.02, gt=0, lt=1)
    samples: Int = Field(ge=1)
    strategies: list[str] = Field(min_length=1)
    seed: Int = Field(0, ge=0)
    train: dict[str, Any]
    finalists: FinalistsEntry | None = None
    resources: Resources = Resources()
    early_stop: EarlyStopEntry | None = None

    @field_validator("spaces", mode="before")
    @classmethod
    def _one_space(cls, value):
        return [value] if isinstance(value, str) else value  # `spaces: regnety` is one space

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, value):
        for name in value:
            get_strategy(name)
        return value

    @model_validator(mode="after")
    def _whole(self):
        if set(self.base) != set(self.spaces):
            raise ValueError(
                f"base must give one entry per space ({', '.join(self.spaces)}): "
                "{search: K} | {model: NAME} | {spec: {...}}"
            )
        try:  # the recipe, with the dataset it will train on
            TrainConfig.from_dict({**self.train, "dataset": self.dataset or "fashion-mnist"})
        except ValueError as exc:
            raise ValueError(f"train: {exc}") from None
        return self
