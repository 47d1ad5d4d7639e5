"""Which model names are networks fastscale did not define, to be traced (`spaces.trace`), and
their one-line errors. Pure Python, so `fastscale complexity RegNetY-4.0GF` never imports
torch: only a name this module calls outside loads `spaces.trace`.

Outside models (docs/models.md, "Any PyTorch model"):

- `timm:NAME` / `torchvision:NAME` that the registry does not map to one of its models;
- a factory `package.module:function` (a dotted module path before the colon), called with
  JSON keyword arguments;
- a TorchScript file (`.pt`, `.pth`, `.ts`, `.jit`) or a `torch.export` file (`.pt2`).
"""

from __future__ import annotations

import re

from spaces.errors import FastscaleError
from spaces.registry import LIBRARIES, is_model

SCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
EXPORT_SUFFIXES = (".pt2",)
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+:[A-Za-z_]\w*$")


class TraceError(FastscaleError):
    """An outside model that cannot be loaded, built or traced; the message names it."""


def model_kind(name: str) -> str | None:
    """ "library", "factory", "script", "export", or None for a registry name or spec file."""
    if is_model(name):
        return None
    lower = name.lower()
    if lower.endswith(EXPORT_SUFFIXES):
        return "export"
    if lower.endswith(SCRIPT_SUFFIXES):
        return "script"
    library, sep, rest = name.partition(":")
    if sep and library in LIBRARIES and rest:
        return "library"
    if _FACTORY.match(name):
        return "factory"
    return None


def is_outside(name: str) -> bool:
    return model_kind(name) is not None


def parse_input_shape(text: str) -> tuple[int, ...]:
    """'3,224,224' -> (3, 224, 224): an image's shape without the batch dimension."""
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape) or len(shape) > 4:
        raise TraceError(
            f"input shape {text!r} is not 1 to 4 positive integers without the batch, "
            "e.g. 3,224,224"
        )
    return shape
