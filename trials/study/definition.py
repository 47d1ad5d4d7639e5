"""A `study run` study's definition: the frozen dataclass held in memory, and its study.json
form (docs/studies.md).

study.json stays what earlier versions wrote, key for key, so an old study resumes: the keys
a definition only has in some studies (the spec list of a --specs study, the Optuna study
name of a tpe/nsga2 search, early stopping, which older studies lack) are left out when
unset, the others are always written. Reading one goes through the schema of
spaces.schema: a study.json missing a section or holding a wrong type is refused in one line
naming the field, before Ray starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from spaces.validate import dataclass_from_mapping
from trials.study.store import StudyError

OPTIONAL = ("specs", "specs_file", "optuna_study", "early_stop")  # absent when None


@dataclass(frozen=True)
class StudyDefinition:
    """What a study trains: a design space searched at a regime, or the specs of a file.

    space/regime: the design space (a name, or a design-space file's content) and its
    regime (flops) of a search; None for specs.
    n: candidates (a search) or specs in the file. tolerance: the regime window.
    seed: sampling seed. sampler: random | tpe | nsga2. storage: the Optuna storage URL,
    password redacted. source: "search" or "specs". train: the TrainConfig fields every
    candidate trains with. early_stop: trials.study.early_stop settings.
    """

    source: Literal["search", "specs"]
    train: dict
    n: int
    tolerance: float
    seed: int
    sampler: str = "random"
    space: str | dict | None = None  # a SPACES name, or a design-space file's mapping
    regime: int | float | str | None = None
    storage: str | None = None
    specs: list[dict] | None = None
    specs_file: str | None = None
    optuna_study: str | None = None
    early_stop: dict | None = None

    @classmethod
    def from_dict(cls, data, where: str = "study.json definition") -> StudyDefinition:
        return dataclass_from_mapping(cls, data, where, StudyError)

    def to_dict(self) -> dict:
        """The study.json `definition` object (byte-compatible with earlier versions)."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if not (k in OPTIONAL and v is None)}

    def replace(self, **changes) -> StudyDefinition:
        return dataclasses.replace(self, **changes)
