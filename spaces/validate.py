"""The two checks every layer repeats: a positive finite number, and a mapping read into a
frozen dataclass (unknown keys are an error that lists the allowed ones, never ignored)."""

from __future__ import annotations

import math

from spaces.errors import FastscaleError


def check_positive(value, what: str, error: type[Exception] = FastscaleError) -> float:
    """`value` (a number or numeric text, not a bool) as a positive finite float, or `error`."""
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not (v > 0 and math.isfinite(v)):
        raise error(f"{what} must be a positive number, got {value!r}")
    return v


def dataclass_from_mapping(
    cls, data, what: str, error: type[Exception] = FastscaleError, required=None, order=None
):
    """`cls(**data)` after the schema check of spaces.schema: a mapping with only `cls`'s
    fields, all of its required ones (`required` overrides which) and values of the
    annotated types; `order` is the order messages list the allowed fields in (default: the
    dataclass's). Ranges stay in `cls.__post_init__`."""
    from spaces.schema import check_dataclass  # pydantic: ~100 ms, kept off the --help path

    check_dataclass(cls, data, what, error, order or (), required)
    try:
        return cls(**data)
    except TypeError as exc:
        raise error(f"{what}: {exc}") from None
