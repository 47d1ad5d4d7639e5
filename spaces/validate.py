"""The two checks every layer repeats: a positive finite number, and a mapping read into a
frozen dataclass (unknown keys are an error that lists the allowed ones, never ignored)."""

from __future__ import annotations

import dataclasses
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
    """`cls(**data)` after checking that `data` is a mapping with only `cls`'s fields and all
    of its required ones (`required` overrides which); a TypeError becomes `error`. `order`
    is the order messages list the allowed fields in (default: the dataclass's)."""
    if not isinstance(data, dict):
        raise error(f"{what} must be a mapping of fields, got {type(data).__name__}")
    fields = dataclasses.fields(cls)
    allowed = list(order) if order is not None else [f.name for f in fields]
    unknown = sorted(str(k) for k in set(data) - set(allowed))
    if unknown:
        raise error(f"{what}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    if required is None:
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
    missing = [k for k in required if k not in data]
    if missing:
        raise error(f"{what} is missing field(s): {', '.join(missing)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise error(f"{what}: {exc}") from None
