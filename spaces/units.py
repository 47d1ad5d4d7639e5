"""Parse and print the quantities users type: `400MF`, `4GF`, `4.0GF`, `4e9`, `20M`, `12000`.

One parser serves flops, params and acts so every command accepts the same spelling.
"""

from __future__ import annotations

import re

from spaces.errors import FastscaleError

_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_PATTERN = re.compile(
    r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)(F|FLOPS)?\s*$", re.I
)

# Largest count any command takes (an exa-multiply-add network is a million ImageNet 1GF
# models): beyond it 64-bit counters and float ratios stop being exact.
MAX_QUANTITY = 10**18
UNITS_HELP = "a number with an optional K/M/G/T suffix and optional F, e.g. 400MF, 4GF, 4e9, 20M"


class UnitError(FastscaleError):
    """A quantity that does not parse."""


def parse_quantity(text: str | int | float, what: str = "value") -> int:
    """Return the integer count that `text` names; raise UnitError with the allowed forms."""
    if isinstance(text, bool):
        raise UnitError(f"{what} {text!r} is not a quantity; use {UNITS_HELP}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _PATTERN.match(str(text))
        if not match:
            raise UnitError(f"{what} {text!r} is not a quantity; use {UNITS_HELP}")
        value = float(match.group(1)) * _SCALE[match.group(2).upper()]
    if not value > 0 or value != value or value == float("inf"):
        raise UnitError(f"{what} {text!r} must be a positive quantity; use {UNITS_HELP}")
    if value > MAX_QUANTITY:
        raise UnitError(f"{what} {text!r} is above the largest allowed quantity, 1e18")
    if round(value) < 1:
        raise UnitError(f"{what} {text!r} rounds to 0; a count is at least 1")
    return int(round(value))


def format_quantity(value: float, unit: str = "", digits: int = 1) -> str:
    """Short human form: 3_973_301_344 -> '4.0G' (+ unit, e.g. 'F' for flops)."""
    value = float(value)
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


_BYTES = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)(i?)(B?)\s*$", re.I)
BYTES_HELP = "bytes as a number with an optional unit, e.g. 12GB, 800MB, 1.5GiB, 1.5e10"


def parse_bytes(text: str | int | float, what: str = "memory") -> int:
    """Bytes from `12GB` (10^9), `1.5GiB` (2^30), `800MB`, `1.5e10` or a plain number."""
    if isinstance(text, bool):
        raise UnitError(f"{what} {text!r} is not a size; use {BYTES_HELP}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _BYTES.match(str(text))
        if not match or (match.group(3) and not (match.group(2) and match.group(4))):
            raise UnitError(f"{what} {text!r} is not a size; use {BYTES_HELP}")
        prefix = match.group(2).upper()
        base = 1024 ** "KMGT".index(prefix) * 1024 if match.group(3) and prefix else None
        value = float(match.group(1)) * (base or _SCALE[prefix])
    if not value > 0 or value != value or value == float("inf"):
        raise UnitError(f"{what} {text!r} must be a positive size; use {BYTES_HELP}")
    return int(round(value))


def format_bytes(value: float, digits: int = 1) -> str:
    """Short human form in powers of 1000: 12_345_678_901 -> '12.3GB'."""
    return format_quantity(value, "B", digits)
