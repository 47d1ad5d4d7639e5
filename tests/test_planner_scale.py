"""Scaling by s with the §6 rounding rules; the batched counter equals `complexity()`."""

import zlib

import numpy as np
import pytest

from planner.batch import batch_complexity, scale_arrays
from planner.scale import ScaleError, realised_factors, scale_spec
from planner.strategies import get_strategy
from spaces.complexity import complexity
from spaces.io import load_specs, save_specs
from spaces.registry import get_model, list_models
from spaces.specs import StageSpec


def _round_group(g):
    g = max(1, round(g))
    return g if g <= 2 else (4 if g <= 5 else round(g / 8) * 8)


def test_regnet_rounding_rules_by_hand():
    """RegNetY-4.0GF, dwr, s = 8: every field from the §6 rules written out here."""
    base = get_model("RegNetY-4.0GF").stages()
    out = scale_spec(base, "dwr", 8.0)
    fd, fw, fg, fr = 2.0, 8 ** (1 / 6), 8 ** (1 / 6), 8 ** (1 / 6)
    assert out.depths == tuple(max(1, round(d * fd)) for d in base.depths)
    assert out.resolution == round(224 * fr / 4) * 4
    for w0, g0, w, g in zip(
        base.widths, base.group_widths, out.widths, out.group_widths, strict=True
    ):
        w8 = max(1, round(w0 * fw / 8)) * 8
        gg = min(_round_group(g0 * fg), w8)
        assert g == gg and w == max(gg, round(w8 / gg) * gg)  # compat for b = 1
    assert (out.stem_width, out.head_width) == (base.stem_width, base.head_width)
    assert isinstance(out, StageSpec) and out.block == "Y"


def test_efficientnet_scales_stem_and_head_and_stays_depthwise():
    base = get_model("EfficientNet-B0").stages()
    out = scale_spec(base, "effnet", 1.92**2)
    fw = 1.1**2
    assert out.stem_width == max(1, round(32 * fw / 8)) * 8
    assert out.head_width == max(1, round(1280 * fw / 8)) * 8
    assert out.group_widths == (1,) * 7 and out.block == "MB"
    assert out.widths == tuple(max(1, round(w * fw / 8)) * 8 for w in base.widths)
    assert out.depths == tuple(max(1, round(d * 1.2**2)) for d in base.depths)


def test_regnet_stem_and_head_are_not_scaled():
    base = get_model("RegNetZ-500MF")
    out = scale_spec(base, "w", 16)
    assert (out.stem_width, out.head_width) == (32, 1024)


def test_scaling_down_and_identity():
    base = get_model("RegNetX-1.6GF")
    assert scale_spec(base, "dWr", 1.0) == base.stages()  # widths are already multiples of 8
    small = scale_spec(base, "dwr", 0.25)
    assert complexity(small).flops < complexity(base).flops
    assert all(d >= 1 for d in small.depths) and all(w >= 8 for w in small.widths)


def test_fine_tune_knobs_act_on_one_factor():
    base = get_model("RegNetY-4.0GF")
    ref = scale_spec(base, "dWr", 4)
    wider = scale_spec(base, "dWr", 4, width_scale=1.05)
    assert wider.depths == ref.depths and wider.resolution == ref.resolution
    assert sum(wider.widths) > sum(ref.widths)
    res = scale_spec(base, "dWr", 4, resolution_steps=-2)
    assert res.resolution == ref.resolution - 8 and res.widths == ref.widths
    with pytest.raises(ScaleError, match="allowed"):
        scale_spec(base, "dWr", 4, depth_scale=2)


@pytest.mark.parametrize("bad", [0, -2, float("nan"), float("inf"), "big"])
def test_bad_factor(bad):
    with pytest.raises(ScaleError, match="positive"):
        scale_spec(get_model("RegNetX-200MF"), "w", bad)


@pytest.mark.parametrize("name", list_models())
def test_batched_counts_equal_complexity(name):
    """Random strategies, factors and fine-tune knobs: the fast path is exact."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    base = get_model(name).stages()
    for strategy in ("dWr", "dwr", "w", "d", "r", "effnet", "d1_w3_g0_r2"):
        n = 6
        s = np.exp(rng.uniform(np.log(0.1), np.log(40), n))
        c = scale_arrays(
            base,
            *get_strategy(strategy).factors(s),
            width_scale=rng.uniform(0.95, 1.05, n),
            group_scale=rng.uniform(0.8, 1.25, n),
            resolution_steps=rng.integers(-4, 5, n),
        )
        flops, params, acts = batch_complexity(base, c)
        for i in range(n):
            cx = complexity(c.row(base, i))
            assert (cx.flops, cx.params, cx.acts) == (flops[i], params[i], acts[i])


def test_realised_factors():
    base = get_model("RegNetY-800MF")
    out = scale_spec(base, "d", 2.0)
    f = realised_factors(base, out)
    assert f.depth == pytest.approx(sum(out.depths) / sum(base.stages().depths))
    assert f.width == 1 and f.resolution == 1 and f.group_width == 1


def test_scaled_spec_round_trips_through_a_spec_file(tmp_path):
    out = scale_spec(get_model("RegNetY-4.0GF"), "dWr", 4)
    path = tmp_path / "scaled.json"
    save_specs(path, out)
    (back,) = load_specs(path)
    assert back == out and complexity(back) == complexity(out)


def test_scaled_spec_builds_with_the_analytic_parameter_count():
    pytest.importorskip("torch")
    from spaces.build import build_model, count_parameters

    for name, strategy in (("RegNetX-200MF", "dWr"), ("EfficientNet-B0", "effnet")):
        out = scale_spec(get_model(name), strategy, 2.0)
        assert count_parameters(build_model(out)) == complexity(out).params


def test_unique_rows_is_exact():
    from planner.batch import _unique_rows

    rng = np.random.default_rng(1)
    keys = rng.integers(0, 4, (500, 7))
    first, inverse = _unique_rows(keys)
    assert np.array_equal(keys[first][inverse], keys)
    assert len(first) == len(np.unique(keys, axis=0))
