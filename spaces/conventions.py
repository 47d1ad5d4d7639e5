"""One traced network counted the way each flop counter counts it, side by side, with the reason
each differs from fastscale's own count (docs/models.md, "Why flop counters disagree").

The rules are read from each library's code (the versions named below), applied to the
operation records of `spaces.trace` (every aten operation of one forward pass with the
`nn.Module` class that ran it), so the table needs none of the libraries installed; the
tests check every row against the library itself where it installs.

- fastscale / pycls (Radosavovic et al. 2020, pycls `models/blocks.py` `*_cx`): multiply-adds
  of convs and linear layers, a bias add counted as one more; BN, activations, residual adds
  and pools are free; acts = conv/linear/max-pool outputs. fastscale also counts products of
  two activations (attention, `matmul`), which pycls's CNN counters never meet.
- torch `torch.utils.flop_counter.FlopCounterMode`: 2 FLOPs per multiply-add of convs and
  matrix products; bias adds, normalisation, activations and pools are not counted.
- fvcore 0.1.5 `FlopCountAnalysis`: multiply-adds of convs and matrix products without bias;
  eval-mode BatchNorm 2 per element (affine), LayerNorm 5 per element (affine),
  `adaptive_avg_pool2d` 1 per input element, nearest upsampling 1 (bilinear 4) per output
  element; activations, adds and max-pools free.
- thop 0.1.1 `profile`: hooks on module classes only (a functional call is invisible):
  conv and `nn.Linear` multiply-adds without bias, BatchNorm/LayerNorm 4 per element
  (affine), adaptive average pool (window + 1) per output element, average pool and upsampling
  per output element; activations free. Its params are those of the modules it has a rule
  for, so a parameter held by any other module (a layer scale) is missed.
- ptflops 0.7.5 `get_model_complexity_info(backend="pytorch")`: module hooks plus patched
  `torch.nn.functional` calls; conv and linear multiply-adds with bias adds, BatchNorm 2 per
  element (affine) and LayerNorm 1 (it looks for `affine`, which LayerNorm lacks), ReLU/GELU/
  ELU/PReLU outputs and pool inputs twice (the module hook and the patched `F.*` its forward
  calls), SiLU once (only the `F.silu` patch), sigmoid and the `+`/`*`/`@` operators free.
"""

from __future__ import annotations

from typing import NamedTuple

from spaces.layers import ACT_KINDS, FLOP_KINDS


class OpRecord(NamedTuple):
    """One operation of a traced forward pass (batch 1)."""

    kind: str  # an operation kind of `spaces.layers.KINDS`
    op: str  # the aten operation, e.g. "aten.convolution.default"
    module: str  # class name of the innermost nn.Module running it ("" for none)
    macs: int = 0  # multiply-adds, bias excluded
    bias: int = 0  # bias adds (one per output element that has a bias)
    inputs: int = 0  # elements read (activations, not weights)
    outputs: int = 0  # elements written
    affine: bool = False  # normalisation with a learned scale and shift
    mode: str = ""  # upsampling mode
    slots: int = 0  # grouped convs: groups × output positions (`spaces.layers.Ops.conv`)


_GEMM = (*FLOP_KINDS,)
_CONV_MODULES = {"Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                 "ConvTranspose3d"}  # fmt: skip
_BN_MODULES = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"}
_ADAPTIVE_AVG = {"AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"}
# thop 0.1.1 `register_hooks`: module classes whose parameters it counts
THOP_MODULES = frozenset(
    _CONV_MODULES | _BN_MODULES | _ADAPTIVE_AVG
    | {"LayerNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "PReLU", "Softmax",
       "ReLU", "ReLU6", "LeakyReLU", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d",
       "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Linear",
       "Dropout", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad2d",
       "PixelShuffle", "RNNCell", "GRUCell", "LSTMCell", "RNN", "GRU", "LSTM"}
)  # fmt: skip


def fastscale(records) -> int:
    return sum(r.macs + r.bias for r in records if r.kind in FLOP_KINDS)


def fastscale_acts(records) -> int:
    return sum(r.outputs for r in records if r.kind in ACT_KINDS)


def pycls(records) -> int:
    return sum(r.macs + r.bias for r in records if r.kind in FLOP_KINDS and r.kind != "matmul")


def pycls_acts(records) -> int:
    return sum(r.outputs for r in records if r.kind in ACT_KINDS and r.kind != "matmul")


def torch_flops(records) -> int:
    return 2 * sum(r.macs for r in records if r.kind in _GEMM)


def fvcore(records) -> int:
    total = 0
    for r in records:
        if r.kind in _GEMM:
            total += r.macs
        elif r.kind == "bn":
            total += r.inputs * (2 if r.affine else 1)
        elif r.kind == "layernorm":
            total += r.inputs * (5 if r.affine else 4)
        elif r.kind == "avgpool" and r.module in _ADAPTIVE_AVG:
            total += r.inputs
        elif r.kind == "upsample":
            total += r.outputs * {"nearest": 1, "bilinear": 4}.get(r.mode, 0)
    return total


def thop(records) -> int:
    total = 0
    for r in records:
        if r.kind in _GEMM and r.module in _CONV_MODULES | {"Linear"}:
            total += r.macs
        elif r.kind in ("bn", "layernorm") and r.module in _BN_MODULES | {"LayerNorm"}:
            total += 2 * r.inputs * (2 if r.affine else 1)
        elif r.kind == "avgpool" and r.module in _ADAPTIVE_AVG:
            window = r.inputs // max(r.outputs, 1)
            total += (window + 1) * r.outputs
        elif r.kind == "avgpool" and r.module in {"AvgPool1d", "AvgPool2d", "AvgPool3d"}:
            total += r.outputs
        elif r.kind == "upsample" and r.module.startswith("Upsampl"):
            total += r.outputs * {"nearest": 1, "linear": 5, "bilinear": 11}.get(r.mode, 0)
    return total


_PTFLOPS_TWICE = {"ReLU", "ELU", "PReLU", "GELU"}  # module hook + the patched F.* it calls
_PTFLOPS_POOLS = {"MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                  "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", *_ADAPTIVE_AVG}  # fmt: skip
_ACTIVATIONS = {"relu", "relu6", "silu", "gelu"}


def ptflops(records) -> int:
    total = 0
    for r in records:
        if r.kind in _GEMM and r.module in _CONV_MODULES | {"Linear"}:
            total += r.macs + r.bias
        elif r.kind == "bn" and r.module in _BN_MODULES:
            total += r.inputs * (2 if r.affine else 1)
        elif r.kind == "layernorm" and r.module == "LayerNorm":
            total += r.inputs
        elif r.kind in _ACTIVATIONS:
            # twice: the module hook and the patched F.* its forward calls; once: one of
            # the two, or a functional call (assumed F.*, not torch.relu or Tensor.relu)
            total += (2 if r.module in _PTFLOPS_TWICE else 1) * r.inputs
        elif r.kind in ("avgpool", "maxpool") and r.module in _PTFLOPS_POOLS:
            total += 2 * r.inputs
        elif r.kind == "upsample" and r.module == "Upsample":
            total += 2 * r.outputs
        elif r.kind == "softmax" and r.module == "Softmax":
            total += r.inputs
    return total


# name: (count, unit, one-line reason it differs from fastscale's count)
CONVENTIONS = {
    "fastscale": (fastscale, "multiply-adds", "pycls's rules; also counts activation×activation "
                  "products (attention)"),
    "pycls": (pycls, "multiply-adds", "conv/linear multiply-adds + bias adds only; acts = "
              "conv/linear/max-pool outputs"),
    "torch": (torch_flops, "FLOPs", "2 FLOPs per multiply-add, no bias adds "
              "(torch.utils.flop_counter)"),
    "fvcore": (fvcore, "multiply-adds", "no bias adds; adds BatchNorm (2/elem), LayerNorm "
               "(5/elem), adaptive avg-pool and upsampling"),
    "thop": (thop, "multiply-adds", "module hooks only, no bias adds; BN/LayerNorm 4/elem, "
             "adaptive avg-pool; params of hooked modules only"),
    "ptflops": (ptflops, "multiply-adds", "module hooks + patched F.*: bias adds, BN 2/elem, "
                "LayerNorm 1/elem, ReLU/GELU and pools counted twice"),
}  # fmt: skip


def conventions_table(records, params: int, thop_params: int) -> list[dict]:
    """One row per library: its count of this network, unit, ratio to fastscale, reason."""
    ours = fastscale(records) or 1
    rows = []
    for name, (count, unit, reason) in CONVENTIONS.items():
        value = count(records)
        row = {"convention": name, "flops": value, "unit": unit, "ratio": value / ours}
        row["params"] = thop_params if name == "thop" else params
        acts = {"fastscale": fastscale_acts, "pycls": pycls_acts}.get(name)
        row["acts"] = acts(records) if acts else None
        row["reason"] = reason
        rows.append(row)
    return rows
