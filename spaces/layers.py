"""Layer-level counting (the pycls conventions of docs/models.md): `Cx` accumulates the
flops, params and acts of convs, BN, linear layers, max-pools and SE while walking a network;
`Ops` records the same layers per operation kind, with the operations `Cx` does not count
(activations, residual adds, pooling, SE gating), for the runtime and memory models.

Only arithmetic and numpy ufuncs, so the same code counts one network (Python ints) or a batch
of networks at once (int64 arrays, one entry per network). Block counters (`spaces.blocks`)
and network walks (`spaces.complexity`) are built from it.
"""

from __future__ import annotations

import numpy as np


def _iround(x):
    """Round half to even, as numpy and Python's round do; stays an array for arrays."""
    return np.rint(x).astype(np.int64) if isinstance(x, np.ndarray) else int(round(x))


def _itrunc(x):
    return x.astype(np.int64) if isinstance(x, np.ndarray) else int(x)


class Cx:
    """Running complexity of a walk at square spatial size h."""

    __slots__ = ("h", "flops", "params", "acts")

    def __init__(self, h):
        self.h, self.flops, self.params, self.acts = h, 0, 0, 0

    def conv(self, cin, cout, k, stride=1, groups=1, bias=False):
        h = (self.h - 1) // stride + 1
        self.flops += k * k * cin * cout * h * h // groups + (cout * h * h if bias else 0)
        self.params += k * k * cin * cout // groups + (cout if bias else 0)
        self.acts += cout * h * h
        self.h = h
        return self

    def bn(self, c):
        self.params += 2 * c
        return self

    def linear(self, cin, cout):
        self.flops += cin * cout + cout
        self.params += cin * cout + cout
        self.acts += cout
        return self

    def se(self, c, c_se):
        """Squeeze-and-excitation: two biased 1x1 convs C -> c -> C at 1x1."""
        squeezed = Cx(1).conv(c, c_se, 1, bias=True).conv(c_se, c, 1, bias=True)
        return self.add(squeezed)

    def pool(self, c, k, stride):
        """Max-pool: only its output elements count (acts); no flops, no params."""
        self.h = (self.h - 1) // stride + 1
        self.acts += c * self.h * self.h
        return self

    def add(self, other: Cx, mask=1):
        self.flops += other.flops * mask
        self.params += other.params * mask
        self.acts += other.acts * mask
        return self


# Operation kinds of `Ops` (docs/planner.md, "The operation model"). Conv kinds: `conv1x1`
# (dense pointwise; in a trace also a Linear applied at every position or token), `conv` (dense k×k, k > 1), `gconv` (grouped, neither dense nor
# depthwise), `dwconv` (depthwise), `se` (the two biased 1×1 convs of squeeze-and-excitation
# at 1×1). Others: `linear`, `bn`, `relu`, `silu`, `sigmoid`, `add` (residual), `mul` (SE
# gating), `avgpool` (global, or ResNet-D's 2×2 shortcut pool), `maxpool`.
# Kinds only traced networks have (`spaces.trace`, docs/models.md "Any PyTorch model"):
# `matmul` (a product of two activations, e.g. attention), `layernorm`, the activations
# `gelu`, `relu6`, `hardswish`, `hardsigmoid`, `tanh`, `softmax`, and `upsample`.
CONV_KINDS = ("conv1x1", "conv", "gconv", "dwconv")
FLOP_KINDS = (*CONV_KINDS, "se", "linear", "matmul")  # their multiply-adds are the flops
ACT_KINDS = (*FLOP_KINDS, "maxpool")  # their outputs are the acts
TRACED_KINDS = ("layernorm", "gelu", "relu6", "hardswish", "hardsigmoid", "tanh", "softmax",
                "upsample")  # fmt: skip
KINDS = (*FLOP_KINDS, "bn", "relu", "silu", "sigmoid", "add", "mul", "avgpool", "maxpool",
         *TRACED_KINDS)  # fmt: skip


class Ops:
    """Running per-kind counts of a walk at square spatial size h (one image).

    `counts` maps "kind.quantity" (quantity: flops, inputs, outputs, calls; and for
    grouped convs slots, groups × output positions) and "params"
    to an int or an int64 array; `mask` arguments (0/1 or bool arrays) switch an operation
    off for the networks that do not have it.
    """

    __slots__ = ("h", "counts")

    def __init__(self, h):
        self.h = h
        self.counts: dict = {}

    def _record(self, kind, mask=1, **quantities):
        for q, v in quantities.items():
            key = f"{kind}.{q}"
            self.counts[key] = self.counts.get(key, 0) + v * mask
        key = f"{kind}.calls"
        self.counts[key] = self.counts.get(key, 0) + 1 * mask

    def _params(self, n):
        self.counts["params"] = self.counts.get("params", 0) + n

    def conv(self, cin, cout, k, stride=1, groups=1, bias=False):
        h_in = self.h
        h = (h_in - 1) // stride + 1
        flops = k * k * cin * cout * h * h // groups + (cout * h * h if bias else 0)
        io = {"flops": flops, "inputs": cin * h_in * h_in, "outputs": cout * h * h}
        groups_arr = np.asarray(groups)  # numpy booleans: `~` on a Python bool is not `not`
        dense = groups_arr == 1
        depthwise = (groups_arr == cin) & (groups_arr == cout) & ~dense
        for kind, mask in (
            ("conv1x1", dense & (k == 1)),
            ("conv", dense & (k > 1)),
            ("gconv", ~dense & ~depthwise),
            ("dwconv", depthwise),
        ):
            if np.any(mask):
                # a grouped conv runs one small GEMM per group and output position: its
                # "slots" price the per-group overhead that makes narrow groups slow
                slots = {"slots": groups * h * h} if kind == "gconv" else {}
                self._record(kind, mask, **io, **slots)
        self._params(k * k * cin * cout // groups + (cout if bias else 0))
        self.h = h
        return self

    def bn(self, c):
        self._record("bn", inputs=c * self.h * self.h)
        self._params(2 * c)
        return self

    def act(self, name: str, c):
        """An activation function ('relu' or 'silu') on c channels."""
        self._record(name, inputs=c * self.h * self.h)
        return self

    def residual(self, c, mask=1):
        """The residual add of two c-channel tensors."""
        self._record("add", mask, inputs=2 * c * self.h * self.h, outputs=c * self.h * self.h)
        return self

    def se(self, c, c_se, act: str):
        """Squeeze-and-excitation: global pool, biased 1x1 C -> c, act, 1x1 c -> C, sigmoid, gate."""
        hw = self.h * self.h
        self._record("avgpool", inputs=c * hw)
        self._record("se", flops=c * c_se + c_se, inputs=c, outputs=c_se)
        self._record(act, inputs=c_se)
        self._record("se", flops=c_se * c + c, inputs=c_se, outputs=c)
        self._record("sigmoid", inputs=c)
        self._record("mul", inputs=c * hw + c, outputs=c * hw)
        self._params(2 * c * c_se + c_se + c)
        return self

    def avgpool(self, c, stride=0):
        """Average pool of c channels: global (stride 0), or 2×2 with a stride (ResNet-D)."""
        h_in = self.h
        if stride:
            self.h = (h_in - 1) // stride + 1
        self._record("avgpool", inputs=c * h_in * h_in)
        return self

    def maxpool(self, c, k, stride):
        h_in = self.h
        self.h = (h_in - 1) // stride + 1
        self._record("maxpool", inputs=c * h_in * h_in, outputs=c * self.h * self.h)
        return self

    def linear(self, cin, cout):
        self._record("linear", flops=cin * cout + cout, inputs=cin, outputs=cout)
        self._params(cin * cout + cout)
        return self

    def merge(self, other: Ops, mask=1):
        """Add another walk's counts (times `mask`: 0/1 per network, or a repeat count)."""
        for key, v in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + v * mask
        return self

    # totals: the complexity walk's three numbers from the per-kind counts
    def total(self, quantity: str, kinds=KINDS):
        out = 0
        for kind in kinds:
            out = out + self.counts.get(f"{kind}.{quantity}", 0)
        return out

    @property
    def flops(self):
        return self.total("flops", FLOP_KINDS)

    @property
    def acts(self):
        return self.total("outputs", ACT_KINDS)

    @property
    def params(self):
        return self.counts.get("params", 0)

    @property
    def calls(self):
        return self.total("calls")
