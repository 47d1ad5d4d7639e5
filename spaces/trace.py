"""Any PyTorch model traced to fastscale's operation counts (docs/models.md, "Any PyTorch
model").

A `TorchDispatchMode` sees every aten operation one forward pass runs, below autograd and
after Python-level composites (`nn.Linear`, `F.scaled_dot_product_attention`, adaptive
pooling) have decomposed into the kernels that do the work. That is what both a runtime and
a flop count price, it is the same machinery as `torch.utils.flop_counter.FlopCounterMode`,
and it runs on the meta device: shapes only, no memory, no weights, a 7B model in seconds.
`torch.fx` symbolic tracing fails on data-dependent Python and sees modules, not kernels;
`torch.export` sees kernels too but refuses more models and needs real inputs for some.
A module that reads a value (data-dependent control flow) cannot run on meta: it is refused.

Each operation is reduced to a kind of `spaces.layers.KINDS` with the quantities
`spaces.layers.Ops` records (multiply-adds, elements read and written, calls), so a traced
network is priced by the runtime and memory models exactly like a registered one; an
operation with no kind is listed by name in `Trace.unknown`, never dropped. The innermost
`nn.Module` class running each operation is kept too: module-hook counters (thop, ptflops)
count by it (`spaces.conventions`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from spaces.conventions import THOP_MODULES, OpRecord, conventions_table
from spaces.layers import Ops
from spaces.outside import TraceError, model_kind
from spaces.registry import external_names

# shape and allocation operations: they move no data (views) or only create outputs
LAYOUT = frozenset(
    "view _unsafe_view reshape t transpose permute expand squeeze unsqueeze flatten slice "
    "select split split_with_sizes chunk unbind detach alias as_strided empty empty_like "
    "empty_strided zeros zeros_like ones ones_like full lift_fresh lift_fresh_copy sym_size "
    "sym_stride sym_numel _local_scalar_dense".split()
)
_ACTS = {"relu": "relu", "silu": "silu", "sigmoid": "sigmoid", "gelu": "gelu",
         "hardtanh": "relu6", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid",
         "tanh": "tanh", "_softmax": "softmax", "_safe_softmax": "softmax", "softmax": "softmax"}  # fmt: skip
_BN = {"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
       "cudnn_batch_norm", "_native_batch_norm_legit_functional"}  # fmt: skip
_ELEMENTWISE = {"add": "add", "sub": "add", "mul": "mul", "div": "mul"}


def _numel(x) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


def _conv(args, out, module) -> OpRecord:
    x, w, bias = args[0], args[1], args[2]
    transposed, groups = bool(args[6]), int(args[8])
    k = math.prod(w.shape[2:])
    positions = math.prod(x.shape[2:] if transposed else out.shape[2:])
    cin, cout = x.shape[1], out.shape[1]
    if k == 1 and bias is not None and math.prod(x.shape[2:]) == 1:
        kind = "se"  # a biased 1×1 conv on a 1×1 map: squeeze-and-excitation (spaces.ops)
    elif groups == 1:
        kind = "conv1x1" if k == 1 else "conv"
    else:
        kind = "dwconv" if groups == cin == cout else "gconv"
    slots = groups * math.prod(out.shape[2:]) * x.shape[0] if kind == "gconv" else 0
    return OpRecord(kind, "", module, macs=w.numel() * positions * x.shape[0],
                    bias=_numel(out) if bias is not None else 0,
                    inputs=_numel(x), outputs=_numel(out), slots=slots)  # fmt: skip


class _Recorder(TorchDispatchMode):
    """Records one `OpRecord` per aten operation; `modules` is the nn.Module call stack."""

    def __init__(self, param_storages: set):
        super().__init__()
        self.records: list[OpRecord] = []
        self.unknown: Counter = Counter()
        self.modules: list[str] = []
        self.params = param_storages

    def _is_param(self, t) -> bool:
        return isinstance(t, torch.Tensor) and t.untyped_storage()._cdata in self.params

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        base = name.rstrip("_")
        if name not in LAYOUT:
            rec = self._classify(name, base, args, out)
            if rec is None:
                self.unknown[str(func)] += 1
            else:
                self.records.append(rec._replace(op=str(func)))
        return out

    def _classify(self, name, base, args, out) -> OpRecord | None:
        module = self.modules[-1] if self.modules else ""
        first = out[0] if isinstance(out, tuple | list) else out
        if base == "convolution":
            return _conv(args, first, module)
        if base in ("addmm", "mm", "bmm", "baddbmm"):
            a, b = (args[1], args[2]) if base in ("addmm", "baddbmm") else (args[0], args[1])
            # a weight times an activation, else two activations ("matmul"). The trace runs at
            # batch 1, so more rows are positions or tokens: a weight applied at each
            # (ConvNeXt's and a transformer's MLPs) is a 1×1 conv by another name, one large
            # GEMM, priced as one; "linear" stays a per-image vector GEMM (a classifier
            # head), whose cost is mostly overhead
            weight = base in ("addmm", "mm") and self._is_param(b)
            kind = "matmul" if not weight else "conv1x1" if a.shape[0] > 1 else "linear"
            bias = _numel(first) if base in ("addmm", "baddbmm") else 0
            inputs = _numel(a) + (0 if weight else _numel(b))  # a weight is not an input
            return OpRecord(kind, "", module, macs=_numel(a) * b.shape[-1], bias=bias,
                            inputs=inputs, outputs=_numel(first))  # fmt: skip
        if base in _BN or base == "native_layer_norm":
            kind = "layernorm" if base == "native_layer_norm" else "bn"
            weight = args[2] if kind == "layernorm" else args[1]
            return OpRecord(kind, "", module, inputs=_numel(args[0]), affine=weight is not None)
        if base in _ACTS:
            return OpRecord(_ACTS[base], "", module, inputs=_numel(args[0]))
        if base in _ELEMENTWISE:
            ins = sum(_numel(a) for a in args[:2])
            return OpRecord(_ELEMENTWISE[base], "", module, inputs=ins, outputs=_numel(first))
        if base == "mean" and args[0].dim() == 4 and len(args) > 1:
            if {d % 4 for d in args[1]} == {2, 3}:  # a global average pool over H and W
                return OpRecord(
                    "avgpool", "", module, inputs=_numel(args[0]), outputs=_numel(first)
                )
            return None
        if base in ("avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool2d"):
            return OpRecord("avgpool", "", module, inputs=_numel(args[0]), outputs=_numel(first))
        if base in ("max_pool2d_with_indices", "max_pool2d"):
            return OpRecord("maxpool", "", module, inputs=_numel(args[0]), outputs=_numel(first))
        if base.startswith("upsample_"):
            mode = base.removeprefix("upsample_").rstrip("0123456789d")
            return OpRecord("upsample", "", module, inputs=_numel(args[0]),
                            outputs=_numel(first), mode=mode)  # fmt: skip
        return None


# quantities each kind records, as the analytic counters of `spaces.ops` do
_QUANTITIES = {"se": ("flops", "inputs", "outputs"), "linear": ("flops", "inputs", "outputs"),
               "matmul": ("flops", "inputs", "outputs"), "add": ("inputs", "outputs"),
               "mul": ("inputs", "outputs"), "maxpool": ("inputs", "outputs"),
               "upsample": ("inputs", "outputs")}  # fmt: skip
for _kind in ("conv1x1", "conv", "dwconv"):
    _QUANTITIES[_kind] = ("flops", "inputs", "outputs")
_QUANTITIES["gconv"] = ("flops", "inputs", "outputs", "slots")


def records_to_ops(records, params: int) -> Ops:
    """`spaces.layers.Ops` counts (one image) of traced operation records."""
    ops = Ops(0)
    for r in records:
        values = {"flops": r.macs + r.bias, "inputs": r.inputs, "outputs": r.outputs,
                  "slots": r.slots}  # fmt: skip
        ops._record(r.kind, **{q: values[q] for q in _QUANTITIES.get(r.kind, ("inputs",))})
    ops.counts["params"] = params
    return ops


@dataclass(frozen=True)
class Trace:
    """One forward pass of a network at batch 1, reduced to fastscale's operation kinds."""

    name: str
    input_shape: tuple
    ops: Ops = field(repr=False)
    records: tuple = field(repr=False)
    unknown: dict  # aten operation -> calls, for operations with no kind
    thop_params: int = 0

    @property
    def flops(self) -> int:
        return int(self.ops.flops)

    @property
    def params(self) -> int:
        return int(self.ops.params)

    @property
    def acts(self) -> int:
        return int(self.ops.acts)

    def as_dict(self) -> dict:
        return {"flops": self.flops, "params": self.params, "acts": self.acts}

    def conventions(self) -> list[dict]:
        return conventions_table(self.records, self.params, self.thop_params)

    def kinds(self) -> dict:
        """Per kind: calls and multiply-adds."""
        out = {}
        for key, v in self.ops.counts.items():
            kind, _, q = key.partition(".")
            if q in ("calls", "flops"):
                out.setdefault(kind, {})[q] = int(v)
        return out


def _thop_params(model: nn.Module) -> int:
    """Parameters thop counts: those of the outermost modules it has a rule for."""
    total = 0
    for child in model.children():
        if type(child).__name__ in THOP_MODULES:
            total += sum(p.numel() for p in child.parameters())
        else:
            total += _thop_params(child)
    return total


def trace_module(model: nn.Module, input_shape, name: str = "model") -> Trace:
    """Trace `model` (eval mode, no gradients) on a meta tensor of shape (1, *input_shape)."""
    params = list(model.parameters())
    meta = {}  # a model with real weights runs on meta stand-ins, left untouched itself
    if any(t.device.type != "meta" for t in (*params, *model.buffers())):
        meta = {n: torch.empty_like(t, device="meta") for n, t in model.named_parameters()}
        meta.update({n: torch.empty_like(t, device="meta") for n, t in model.named_buffers()})
        params = [meta[n] for n, _ in model.named_parameters()]
    rec = _Recorder({p.untyped_storage()._cdata for p in params})

    def enter(module, _args):
        rec.modules.append(type(module).__name__)

    def leave(_module, _args, _out):  # returns None: a hook's return value replaces the output
        if rec.modules:
            rec.modules.pop()

    pre = nn.modules.module.register_module_forward_pre_hook(enter)
    post = nn.modules.module.register_module_forward_hook(leave)
    was_training = getattr(model, "training", False)
    try:
        _set_training(model, False)
        x = torch.zeros((1, *input_shape), device="meta")
        with torch.no_grad(), rec:
            torch.func.functional_call(model, meta, (x,)) if meta else model(x)
    except TraceError:
        raise
    except Exception as exc:  # any failure of the user's forward pass is reported in one line
        raise TraceError(_forward_error(name, input_shape, exc)) from None
    finally:
        pre.remove()
        post.remove()
        _set_training(model, was_training)
    ops = records_to_ops(rec.records, sum(p.numel() for p in params))
    return Trace(name, tuple(input_shape), ops, tuple(rec.records), dict(rec.unknown),
                 _thop_params(model))  # fmt: skip


def _set_training(model: nn.Module, mode: bool) -> None:
    """train()/eval(), except on an exported program's module: its mode was fixed at export."""
    with contextlib.suppress(NotImplementedError):
        model.train(mode)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def _forward_error(name, input_shape, exc) -> str:
    shape = "x".join(map(str, input_shape))
    text = str(exc)
    if "meta" in text and any(w in text for w in ("item", "data-dependent", "copy out")):
        return (f"{name}: cannot be traced: its forward reads tensor values (data-dependent "
                f"control flow), which shape-only tracing cannot follow ({_first_line(exc)})")  # fmt: skip
    return f"{name}: the forward pass fails at input shape {shape}: {_first_line(exc)}"


def _library_module(name: str, kwargs: dict) -> nn.Module:
    library, _, model = name.partition(":")
    try:
        lib = importlib.import_module(library)
    except ImportError:
        raise TraceError(
            f"{name}: {library} is not installed (`pip install {library}`), and the registry "
            f"has no model of that name (known: {', '.join(external_names(library))})"
        ) from None
    if library == "timm":
        return lib.create_model(model, pretrained=False, **kwargs)
    return lib.models.get_model(model, weights=None, **kwargs)


def _factory_module(name: str, kwargs: dict) -> nn.Module:
    module_name, _, func_name = name.partition(":")
    # the user's own package, run from its directory: the current directory comes first on
    # the path (as uvicorn and gunicorn import an app), since a console script lacks it
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise TraceError(f"{name}: cannot import the factory: {_first_line(exc)}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    return func(**kwargs)


def load_module(name: str, kwargs: dict | None = None, device: str = "meta") -> nn.Module:
    """The nn.Module a name stands for (`spaces.outside.model_kind`), built on `device`: the
    meta device by default, where its constructor allows (no memory, no weight
    initialisation); "cpu" for a module to run (`trials.timing.outside`)."""
    kind = model_kind(name)
    kwargs = dict(kwargs or {})
    if kind in ("script", "export"):
        if kwargs:
            raise TraceError(f"{name}: a model file takes no keyword arguments")
        if not Path(name).is_file():
            raise TraceError(f"{name}: no such model file")
        try:
            if kind == "script":
                return torch.jit.load(name, map_location=device)
            return torch.export.load(name).module()
        except Exception as exc:
            raise TraceError(f"{name}: not a {'TorchScript' if kind == 'script' else 'torch.export'} file: {_first_line(exc)}") from None  # fmt: skip
    if kind is None:
        raise TraceError(f"{name}: not a model to trace (timm:/torchvision: name, "
                         "package.module:function, or a .pt/.pt2 file)")  # fmt: skip
    build = _library_module if kind == "library" else _factory_module
    try:
        with torch.device(device):
            model = build(name, kwargs)
    except TraceError:
        raise
    except Exception as exc:
        raise TraceError(f"{name}: building the model failed: {_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise TraceError(f"{name}: the factory returned {type(model).__name__}, not an nn.Module")
    return model


def parse_kwargs(text: str | None) -> dict:
    """JSON keyword arguments of a factory: an object, e.g. '{"num_classes": 10}'."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"--kwargs is not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise TraceError('--kwargs must be a JSON object, e.g. {"num_classes": 10}')
    return value


def trace_model(name: str, input_shape=(3, 224, 224), kwargs: dict | None = None) -> Trace:
    """Load (`load_module`) and trace an outside model at `input_shape` (no batch)."""
    return trace_module(load_module(name, kwargs), tuple(input_shape), name)


def trace_spec(spec) -> Trace:
    """A registered or any spec's built network, traced at its resolution (the round trip that
    proves the tracer against the analytic counts)."""
    from spaces.build import build_model

    with torch.device("meta"):
        model = build_model(spec)
    s = spec.stages()
    return trace_module(model, (s.in_channels, s.resolution, s.resolution), spec.family)


def input_shape_of(shape=None, resolution: int | None = None) -> tuple:
    """(C, H, W) of an outside model: `shape`, else 3 channels at `resolution` (default 224)."""
    if shape:
        return tuple(shape)
    r = resolution or 224
    return (3, r, r)


def trace_record(trace: Trace, conventions: bool = False) -> dict:
    """What `fastscale complexity --json` prints of a traced network."""
    out = {"name": trace.name, **trace.as_dict(), "input_shape": list(trace.input_shape)}
    out["kinds"] = trace.kinds()
    out["unknown_ops"] = trace.unknown
    if conventions:
        out["conventions"] = trace.conventions()
    return out


def priced_ops(trace: Trace) -> Ops:
    """The operation counts a runtime or memory model prices; refused when some operation has
    no kind (it would be priced at nothing)."""
    if trace.unknown:
        ops = ", ".join(sorted(trace.unknown))
        raise TraceError(
            f"{trace.name}: cannot be priced: operations with no fastscale kind: {ops} "
            "(see docs/models.md, 'Any PyTorch model')"
        )
    return trace.ops
