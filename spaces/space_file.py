"""Design-space files: a RegNet design space (spaces.sampler.DesignSpace) as YAML/JSON, so a
space refined by `fastscale analyze` (docs/analysis.md) can be sampled (`sample --space
FILE`) and searched (`study run --space FILE`). A file names a base space (one of SPACES)
and the ranges that differ from it:

    name: regnetx-refined
    base: regnetx
    depth: {low: 13, high: 21, log: false, step: 1}
    w0: {low: 24, high: 96, step: 8}          # log defaults to the base range's
    wm: [2.2, 2.8]                             # [low, high]: the base's log and step

Every value is validated (spaces.space_schema); a bad one is one SpaceFileError naming the key
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from spaces.errors import FastscaleError
from spaces.io import read_data_file, short_path
from spaces.sampler import SPACES, DesignSpace, Range

RANGE_KEYS = ("depth", "w0", "wa", "wm", "group_width")


class SpaceFileError(FastscaleError):
    """A design-space file that cannot be read or holds an invalid space."""


def is_space_name(ref: str) -> bool:
    return str(ref).lower() in SPACES


def _range(given: dict, base: Range, key: str, where: str) -> Range:
    """A file's range over the base space's (types checked by the schema)."""
    fields = {"low": base.low, "high": base.high, "log": base.log, "step": base.step}
    fields.update({k: v for k, v in given.items() if v is not None})
    low, high, step = float(fields["low"]), float(fields["high"]), float(fields["step"])
    if not (0 < low <= high) or step <= 0:
        raise SpaceFileError(
            f"{where}: {key} needs 0 < low <= high and step > 0, got [{low:g}, {high:g}] step {step:g}"
        )
    if not (base.low <= low and high <= base.high):
        raise SpaceFileError(
            f"{where}: {key} [{low:g}, {high:g}] leaves the base range [{base.low:g}, {base.high:g}]"
        )
    return Range(low, high, log=fields["log"], step=step)


def space_from_dict(data, where: str = "design space") -> DesignSpace:
    """A DesignSpace from a design-space mapping (see the module docstring), checked by its
    schema (spaces.space_schema) first."""
    from spaces.schema import validate  # pydantic: kept off `fastscale --help`
    from spaces.space_schema import SpaceFile

    f = validate(SpaceFile, data, where, SpaceFileError)
    base = DesignSpace.named(f.base)
    changes = {
        k: _range(getattr(f, k).model_dump(), getattr(base, k), k, where)
        for k in RANGE_KEYS
        if getattr(f, k) is not None
    }
    if f.round_groups is not None:
        changes["round_groups"] = f.round_groups
    return dataclasses.replace(base, **changes)


def space_to_dict(space: DesignSpace, base: str, name: str) -> dict:
    """The mapping a design-space file holds for `space` (every range written out)."""
    out = {"name": name, "base": base}
    for k in RANGE_KEYS:
        r = getattr(space, k)
        out[k] = {"low": r.low, "high": r.high, "log": r.log, "step": r.step}
    out["round_groups"] = space.round_groups
    return out


def load_space_file(path: str | Path) -> dict:
    """The validated mapping of a design-space file (validated by building its space)."""
    data = read_data_file(path, "design-space file", SpaceFileError)
    space_from_dict(data, f"design-space file {short_path(path)}")
    return {**data, "name": data.get("name") or Path(path).stem}


def resolve_space(ref) -> tuple[str, DesignSpace, str | dict]:
    """(label, DesignSpace, stored form) of a --space value: a name of SPACES (stored as the
    name) or a design-space file (stored as its mapping, so a study keeps the space even
    if the file changes); a mapping (Python API) is taken as a file's content."""
    if isinstance(ref, dict):
        return str(ref.get("name") or ref.get("base")), space_from_dict(ref), ref
    ref = str(ref)
    if is_space_name(ref):
        return ref.lower(), DesignSpace.named(ref), ref.lower()
    if not os.path.exists(ref):
        raise SpaceFileError(
            f"--space {ref!r} is neither a space ({', '.join(SPACES)}) nor a design-space file"
        )
    data = load_space_file(ref)
    return data["name"], space_from_dict(data), data
