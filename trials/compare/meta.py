"""compare.json, read back: the comparison's record of itself (trials.compare.run writes it).

A rebuilt report, a resumed comparison and `report --profile` read it through this schema:
a file that is not JSON, or a field of the wrong type, is refused in one line naming the
field instead of failing deep inside the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spaces.io import parse_data, read_text_file
from spaces.schema import Int, Schema, validate
from trials.compare.candidates import META_FILE, CompareError


class Run(Schema):
    """One invocation (a resume appends one)."""

    wall_s: float
    finished: str
    trials: Int
    host: str = ""
    cpus: Int | None = None


class CompareMeta(Schema):
    """compare.json (docs/compare.md): the preset as run and this comparison's study keys."""

    preset: str | None = None
    preset_source: str | None = None
    dataset: str | None = None
    samples: Int | None = None
    regimes: dict[str, str] = {}
    config: dict[str, Any] = {}
    runs: list[Run] = []
    keys: list[str] = []
    timing: dict[str, Any] | None = None
    early_stop: dict[str, Any] | None = None


def read_meta(out_dir: str | Path) -> dict:
    """The comparison's compare.json as written ({} when there is none yet)."""
    path = Path(out_dir) / META_FILE
    if not path.is_file():
        return {}
    text = read_text_file(path, "comparison metadata", CompareError)
    data = parse_data(text, True, str(path), CompareError)
    validate(CompareMeta, data, str(path), CompareError)
    return data
