"""Layer-level counting (the pycls conventions of docs/models.md): `Cx` accumulates the
flops, params and acts of convs, BN, linear layers, max-pools and SE while walking a network.

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
