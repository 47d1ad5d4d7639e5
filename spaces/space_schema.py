"""The design-space file format (spaces.space_file has the example and the meaning): its
types, keys and the `[low, high]` short form, checked by spaces.schema. What depends on the
base space (a range inside the base's, low <= high) stays with space_file."""

from __future__ import annotations

from pydantic import Field, field_validator

from spaces.sampler import SPACES
from spaces.schema import Schema


class RangeEntry(Schema):
    """One range; what is left out is the base range's."""

    low: float | None = None
    high: float | None = None
    log: bool | None = None
    step: float | None = None


class SpaceFile(Schema):
    """A named base space and the ranges that differ from it."""

    name: str | None = Field(None, min_length=1)
    base: str
    depth: RangeEntry | None = None
    w0: RangeEntry | None = None
    wa: RangeEntry | None = None
    wm: RangeEntry | None = None
    group_width: RangeEntry | None = None
    round_groups: bool | None = None

    @field_validator("depth", "w0", "wa", "wm", "group_width", mode="before")
    @classmethod
    def _pair(cls, value, info):
        """[low, high] is {low, high} with the base's log and step."""
        if isinstance(value, list):
            if len(value) != 2:
                raise ValueError(f"{info.field_name} must be [low, high], got {len(value)} values")
            return {"low": value[0], "high": value[1]}
        return value

    @field_validator("base")
    @classmethod
    def _base(cls, value):
        if value.lower() not in SPACES:
            raise ValueError(f"base must be one of {', '.join(SPACES)}, got {value!r}")
        return value
