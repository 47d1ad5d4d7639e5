"""No count is ever silently wrong: huge networks are counted exactly in Python ints by both
the scalar and the vectorized counter, or refused when the spec is out of range."""

from __future__ import annotations

import numpy as np
import pytest

from spaces.complexity import (
    _walk,
    block_complexity,
    complexity,
    head_complexity,
    regnet_complexity_batch,
    stages_complexity_batch,
    stem_complexity,
)
from spaces.registry import get_model
from spaces.specs import RegNetSpec, SpecError, StageSpec

INT64_MAX = 2**63 - 1
HUGE = StageSpec(  # widest, sharpest, deepest a spec may be: counts far past 2**63
    block="X",
    depths=(3, 10_000, 2, 1),
    widths=(2**18, 2**19, 2**20, 2**20),
    group_widths=(2**18, 2**19, 2**20, 2**20),
    bottlenecks=(1, 1, 1, 1),
    strides=(2, 2, 2, 2),
    resolution=16384,
    num_classes=10**7,
)


def literal_walk(s) -> tuple[int, int, int]:
    """Block by block, Python ints: the definition the stage-wise counters must match."""
    cx = stem_complexity(s.resolution, s.in_channels, s.stem_width, s.stem)
    w_in = s.stem_width
    for i, depth in enumerate(s.depths):
        for j in range(depth):
            stride = s.strides[i] if j == 0 else 1
            blk = block_complexity(
                s.block, cx.h, w_in, s.widths[i], stride, s.group_widths[i], s.bottlenecks[i],
                s.kernels[i], s.se_ratio,
            )  # fmt: skip
            cx.add(blk)
            cx.h, w_in = blk.h, s.widths[i]
    head_complexity(cx, w_in, s.head_width, s.num_classes)
    return cx.flops, cx.params, cx.acts


def test_scalar_counter_is_exact_past_int64():
    cx = complexity(HUGE)
    assert all(type(v) is int for v in cx)
    assert cx.flops > INT64_MAX
    assert tuple(cx) == literal_walk(HUGE)


def test_vectorized_counter_is_exact_past_int64():
    small = get_model("RegNetX-200MF").stages()
    rows = [HUGE, HUGE.replace(depths=(1, 1, 1, 1)), small]
    s = max(rows, key=lambda r: len(r.depths))
    depths = np.array([r.depths for r in rows])
    widths = np.array([r.widths for r in rows])
    groups = np.array([r.group_widths for r in rows])
    res = np.array([r.resolution for r in rows])
    base = s.replace(num_classes=HUGE.num_classes)
    flops, params, acts = stages_complexity_batch(base, depths, widths, groups, res)
    for i, row in enumerate(rows):
        want = complexity(row.replace(num_classes=HUGE.num_classes))
        assert (int(flops[i]), int(params[i]), int(acts[i])) == tuple(want)
    assert int(flops[0]) > INT64_MAX


def test_ordinary_batches_stay_int64():
    cx = regnet_complexity_batch("Y", [16], [48], [27.89], [2.09], [8])
    assert cx["flops"].dtype == np.int64
    assert int(cx["flops"][0]) == complexity(get_model("RegNetY-400MF")).flops


def test_a_billion_blocks_are_counted_without_a_walk():
    """A stage repeats one block after its first: depth 10^9 costs two block counts."""
    s = get_model("RegNetX-200MF").stages()

    def flops(d):
        depths = (s.depths[0], d, s.depths[2], s.depths[3])
        return _walk(s, depths, s.widths, s.group_widths, 224, 32, 0).flops

    step = flops(3) - flops(2)
    assert flops(10**9) == flops(2) + (10**9 - 2) * step
    assert flops(10**9) > 10**15


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("w0", 8e30),
        ("wm", float("inf")),
        ("wa", float("nan")),
        ("depth", 10**9),
        ("depth", 12.5),
        ("depth", True),
        ("depth", "13"),
        ("resolution", 10**9),
        ("num_classes", 10**25),
        ("group_width", -8),
    ],
)
def test_out_of_range_fields_are_refused(field, value):
    base = {"block": "Y", "depth": 13, "w0": 24, "wa": 36.44, "wm": 2.49, "group_width": 8}
    with pytest.raises(SpecError, match=field):
        RegNetSpec(**{**base, field: value})


@pytest.mark.parametrize("field", ["widths", "depths", "group_widths"])
def test_out_of_range_stage_fields_are_refused(field):
    with pytest.raises(SpecError, match=field):
        HUGE.replace(**{field: tuple(v * 10**12 for v in getattr(HUGE, field))})
