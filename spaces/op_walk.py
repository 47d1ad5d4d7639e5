"""Per-kind operation counts of a whole network: the walks over its stages that add up the
op counters of `spaces.ops` (docs/planner.md, "The walk").

`op_counts(spec)` walks a spec block by block, as `spaces.complexity.complexity` does, with
each block's and stem's op counter (the block table's `ops=`); `stages_ops_batch` is its
vectorized face (N networks sharing one base, every count an (N,) int64 array). The sums
over kinds equal `complexity()`'s flops, params and acts (tested for every registered model).

Imports go one way: `spaces.ops` (counters) <- `spaces.blocks` (the table) <- this module.
"""

from __future__ import annotations

import numpy as np

from spaces.blocks import Block, BlockError, get_block, get_stem
from spaces.ops import Ops, head_ops


def _priced_block(name: str) -> Block:
    """The block's table row, or BlockError when it has no op counter."""
    kind = get_block(name)
    if kind.ops is None:
        raise BlockError(
            f"block {name} has no operation counter (spaces.ops), so its runtime and memory "
            "cannot be predicted; write one beside its module and point its table row at it"
        )
    return kind


def op_counts(spec) -> Ops:
    """Per-kind operation counts of any spec: the block-by-block walk of `complexity()`."""
    s = spec.stages()
    kind = _priced_block(s.block)
    act = kind.activation
    ops = get_stem(s.stem).ops(s.resolution, s.in_channels, s.stem_width, act)
    w_in = s.stem_width
    for i, depth in enumerate(s.depths):
        w, g, b, k = s.widths[i], s.group_widths[i], s.bottlenecks[i], s.kernels[i]
        for j in range(depth):
            stride = s.strides[i] if j == 0 else 1
            blk = kind.ops(ops.h, w_in, w, stride, g, b, k, s.se_ratio, act, s.shortcut)
            ops.merge(blk)
            ops.h, w_in = blk.h, w
    head_ops(ops, w_in, s.head_width, s.num_classes, act)
    ops.counts = {k: int(v) for k, v in ops.counts.items()}  # numpy booleans made some int64
    return ops


def stages_ops_batch(
    base, depths, widths, groups, resolution, stem_width=None, head_width=None
) -> Ops:
    """Per-kind counts of N networks sharing `base`'s block and stem kind, strides, kernels,
    bottlenecks, SE ratio, shortcut, input channels and classes (the arguments of
    `spaces.complexity.stages_complexity_batch`): every count is an (N,) int64 array.

    Walks stages: after its first block a stage repeats one identical block (d - 1) times.
    """
    depths = np.asarray(depths, dtype=np.int64)
    widths, groups = (np.asarray(v, dtype=np.int64) for v in (widths, groups))
    n = depths.shape[0]

    def column(v, default):
        v = default if v is None else v
        return np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy()

    kind = _priced_block(base.block)
    act = kind.activation
    w_in = column(stem_width, base.stem_width)
    ops = get_stem(base.stem).ops(column(resolution, base.resolution), base.in_channels, w_in, act)
    h = ops.h.copy()
    for i in range(depths.shape[1]):
        present = depths[:, i] > 0  # absent stages are counted with width 8, then masked out
        w, g = np.where(present, widths[:, i], 8), np.where(present, groups[:, i], 1)
        t, b, k, se = base.strides[i], base.bottlenecks[i], base.kernels[i], base.se_ratio
        first = kind.ops(h, w_in, w, t, g, b, k, se, act, base.shortcut)
        rest = kind.ops(first.h, w, w, 1, g, b, k, se, act, base.shortcut)
        ops.merge(first, present).merge(rest, np.maximum(depths[:, i] - 1, 0))
        h = np.where(present, first.h, h)
        w_in = np.where(present, w, w_in)
    ops.h = h
    head_ops(ops, w_in, column(head_width, base.head_width), base.num_classes, act)
    ops.counts = {k: np.broadcast_to(v, (n,)).astype(np.int64) for k, v in ops.counts.items()}
    return ops
