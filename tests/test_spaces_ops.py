"""The per-operation walk: its counts sum to the exact complexity of every registered model,
its vectorized face equals the scalar walk, and it matches what the built network runs."""

import numpy as np
import pytest

from planner.batch import scale_arrays
from spaces.complexity import complexity
from spaces.op_walk import op_counts, stages_ops_batch
from spaces.ops import ACT_KINDS, CONV_KINDS, KINDS
from spaces.registry import get_model, list_models
from spaces.specs import RegNetSpec


@pytest.mark.parametrize("name", list_models())
def test_counts_sum_to_the_analytic_complexity(name):
    for spec in (get_model(name), get_model(name).with_resolution(64)):
        ops, cx = op_counts(spec), complexity(spec)
        assert (ops.flops, ops.params, ops.acts) == (cx.flops, cx.params, cx.acts)
        assert all(v >= 0 for v in ops.counts.values())
        assert set(k.split(".")[0] for k in ops.counts) <= {*KINDS, "params"}


def test_kinds_follow_the_block_types():
    def kinds(name):
        counts = op_counts(get_model(name)).counts
        return {k.split(".")[0] for k, v in counts.items() if k.endswith(".calls") and v}

    x, y, z, en = (kinds(n) for n in ("RegNetX-400MF", "RegNetY-400MF", "RegNetZ-500MF",
                                      "EfficientNet-B0"))  # fmt: skip
    assert {"conv", "conv1x1", "gconv", "bn", "relu", "add", "avgpool", "linear"} == x
    assert y == x | {"se", "sigmoid", "mul"}
    assert "silu" in z and "relu" not in z and "gconv" in z  # RegNetZ-500MF: group width 4
    assert "dwconv" in en and "gconv" not in en and "silu" in en
    # group width 1 is depthwise, and the stem is then the only dense k×k conv
    z1 = op_counts(RegNetSpec("Z", 21, 16, 10.7, 2.51, 1)).counts
    assert z1["dwconv.calls"] == 21 and z1["conv.calls"] == 1 and "gconv.calls" not in z1


@pytest.mark.parametrize(
    "name", ["RegNetY-800MF", "RegNetX-1.6GF", "RegNetZ-500MF", "EfficientNet-B2"]
)
def test_vectorized_face_equals_the_scalar_walk(name):
    base = get_model(name).stages()
    rng = np.random.default_rng(1)
    n = 12
    cands = scale_arrays(
        base, rng.uniform(0.3, 3, n), rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n),
        rng.uniform(0.3, 1.2, n),
    )  # fmt: skip
    ops = stages_ops_batch(
        base, cands.depths, cands.widths, cands.group_widths, cands.resolution,
        cands.stem_width, cands.head_width,
    )  # fmt: skip
    for i in range(n):
        one = op_counts(cands.row(base, i))
        keys = set(one.counts) | set(ops.counts)
        assert {k: int(one.counts.get(k, 0)) for k in keys} == {
            k: int(ops.counts[k][i]) if k in ops.counts else 0 for k in keys
        }


@pytest.mark.parametrize(
    "name", ["RegNetY-200MF", "RegNetZ-500MF", "EfficientNet-B0", "ResNet-18", "ResNet-50-D",
             "ResNet-RS-50"]
)  # fmt: skip
def test_walk_matches_the_modules_a_forward_pass_runs(name):
    """Calls and output elements per kind, as hooks on the built network see them."""
    import torch
    from torch import nn

    from spaces.build import build_model

    spec = get_model(name).with_resolution(32)
    model = build_model(spec).eval()
    seen: dict[str, int] = {}

    def kind_of(m):
        if isinstance(m, nn.Conv2d):
            if m.bias is not None:
                return "se"
            if m.groups == 1:
                return "conv1x1" if m.kernel_size == (1, 1) else "conv"
            return "dwconv" if m.groups == m.in_channels == m.out_channels else "gconv"
        return {nn.BatchNorm2d: "bn", nn.ReLU: "relu", nn.SiLU: "silu", nn.Sigmoid: "sigmoid",
                nn.Linear: "linear", nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool",
                nn.AdaptiveAvgPool2d: "avgpool"}.get(type(m))  # fmt: skip

    def hook(m, _inputs, out):
        kind = kind_of(m)
        seen[f"{kind}.calls"] = seen.get(f"{kind}.calls", 0) + 1
        if kind == "gconv":  # one small GEMM per group and output position
            slots = m.groups * out.shape[-2] * out.shape[-1]
            seen["gconv.slots"] = seen.get("gconv.slots", 0) + slots
        if kind in ACT_KINDS:
            seen[f"{kind}.outputs"] = seen.get(f"{kind}.outputs", 0) + out[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if kind_of(m)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    counts = op_counts(spec).counts
    for kind in (*CONV_KINDS, "se", "bn", "relu", "silu", "sigmoid", "linear", "maxpool",
                 "avgpool"):  # fmt: skip
        assert seen.get(f"{kind}.calls", 0) == counts.get(f"{kind}.calls", 0), kind
        if kind in ACT_KINDS:
            assert seen.get(f"{kind}.outputs", 0) == counts.get(f"{kind}.outputs", 0), kind
    assert seen.get("gconv.slots", 0) == counts.get("gconv.slots", 0)
