"""Property tests of the input layer: whatever a user types or a file holds, the parsers and
spec validation answer with a value or a FastscaleError (one line at the CLI), never another
exception; and the scalar and vectorized counters agree on every valid stage network."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spaces.complexity import complexity, stages_complexity_batch
from spaces.errors import FastscaleError
from spaces.io import parse_data
from spaces.specs import spec_from_dict
from spaces.units import MAX_QUANTITY, parse_quantity

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
FIELDS = ["block", "depth", "w0", "wa", "wm", "group_width", "resolution", "num_classes",
          "depths", "widths", "group_widths", "bottlenecks", "strides", "family"]  # fmt: skip


@FAST
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats()))
def test_quantities_parse_or_refuse(text):
    try:
        value = parse_quantity(text)
    except FastscaleError:
        return
    assert isinstance(value, int) and 0 < value <= MAX_QUANTITY


@FAST
@given(st.dictionaries(st.sampled_from(FIELDS), ANY_JSON, max_size=8))
def test_any_mapping_is_a_spec_or_a_spec_error(data):
    try:
        spec = spec_from_dict(data)
    except FastscaleError:
        return
    assert complexity(spec).flops > 0


@FAST
@given(st.text(max_size=200), st.booleans())
def test_any_text_parses_or_refuses(text, as_json):
    try:
        parse_data(text, as_json, "file")
    except FastscaleError:
        pass


@FAST
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.lists(st.integers(1, 64), min_size=4, max_size=4),
    st.integers(2, 64),
)
def test_scalar_and_vectorized_counters_agree(depths, width_units, res_units):
    from spaces.specs import StageSpec

    n = len(depths)
    widths = [8 * w for w in width_units[:n]]
    spec = StageSpec(
        block="Y", depths=depths, widths=widths, group_widths=[8] * n, bottlenecks=[1] * n,
        strides=[2] * n, resolution=4 * res_units, se_ratio=0.25,
    )  # fmt: skip
    flops, params, acts = stages_complexity_batch(
        spec, np.array([depths]), np.array([widths]), np.array([[8] * n]), [spec.resolution]
    )
    assert (int(flops[0]), int(params[0]), int(acts[0])) == tuple(complexity(spec))
    json.dumps(complexity(spec).as_dict())
