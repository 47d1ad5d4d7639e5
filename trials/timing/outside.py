"""An outside model to time: a PyTorch network fastscale did not define (docs/models.md,
"Any PyTorch model"), named as `fastscale complexity` takes it (`timm:NAME`,
`package.module:function` with JSON keyword arguments, a `.pt`/`.pt2` file) at an input shape.

`time_model`/`time_models` (`trials.timing.step_time`) and `calibrate --add` take one where
they take a spec: it builds a real module on the CPU (`spaces.trace.load_module`) and traces
it (`spaces.trace.trace_module`) for the operation counts its record and calibration row carry.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import torch

from spaces import trace


@dataclass(frozen=True)
class OutsideModel:
    name: str
    input_shape: tuple = (3, 224, 224)  # one input without the batch dimension
    kwargs: dict = field(default_factory=dict, hash=False)  # the factory's keyword arguments

    @property
    def resolution(self) -> int:
        return int(self.input_shape[-1])

    def with_resolution(self, resolution: int) -> OutsideModel:
        """The same model at a square `resolution` (the channels kept); itself when that is
        its shape already, so its trace (cached) is not taken again."""
        shape = (*self.input_shape[:-2], resolution, resolution)
        if shape == tuple(self.input_shape):
            return self
        return OutsideModel(self.name, shape, dict(self.kwargs))

    def build(self) -> torch.nn.Module:
        """A fresh module with real (initialised) weights on the CPU."""
        return trace.load_module(self.name, self.kwargs, device="cpu")

    def trace(self) -> trace.Trace:
        """The operation counts of one input, traced once per model (on the meta device: the
        counts do not depend on the weights) and kept; refused when an operation has no kind
        (`spaces.trace.priced_ops`). Timing, `calibrate`'s checks and its rows all ask."""
        return self._trace

    @functools.cached_property
    def _trace(self) -> trace.Trace:
        module = trace.load_module(self.name, self.kwargs)
        traced = trace.trace_module(module, self.input_shape, self.name)
        trace.priced_ops(traced)
        return traced

    def to_dict(self) -> dict:
        return {"name": self.name, "input_shape": list(self.input_shape), "kwargs": self.kwargs}

    @property
    def label(self) -> str:
        """The name, with the keyword arguments when there are any (they tell models apart)."""
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in self.kwargs.items())
        return f"{self.name}({args})" if args else self.name


def outside_models(names, input_shape=None, resolution=None, kwargs_json=None) -> list:
    """OutsideModels of `names` at `input_shape` (else 3 channels at `resolution`, default
    224), each with the same JSON keyword arguments; each traced once so a bad model is
    refused (one line) before any timing."""
    shape = trace.input_shape_of(input_shape, resolution)
    kwargs = trace.parse_kwargs(kwargs_json)
    models = [OutsideModel(name, shape, kwargs) for name in names]
    for m in models:
        m.trace()
    return models
