"""Strategies (the paper's §3-5, docs/planner.md): factor exponents, the α family, names, weight strings, effnet."""

import math

import numpy as np
import pytest

from planner.strategies import (
    EFFNET_BASE,
    StrategyError,
    alpha_grid,
    alpha_strategy,
    get_strategy,
)
from spaces.errors import FastscaleError


@pytest.mark.parametrize(
    "name, expected",  # (depth, width, resolution) exponents of s, table of §6
    [
        ("d", (1, 0, 0)),
        ("w", (0, 0.5, 0)),
        ("r", (0, 0, 0.5)),
        ("dwr", (1 / 3, 1 / 6, 1 / 6)),
        ("dw", (0.5, 0.25, 0)),
        ("dr", (0.5, 0, 0.25)),
        ("wr", (0, 0.25, 0.25)),
        ("dWr", (0.1, 0.4, 0.05)),
    ],
)
def test_named_exponents_and_flops_grow_by_s(name, expected):
    st = get_strategy(name)
    e_d, e_w, e_g, e_r = st.exponents
    assert (e_d, e_w, e_r) == pytest.approx(expected)
    assert e_g == pytest.approx(e_w)  # group width scales like width
    assert e_d + 2 * e_w + 2 * e_r == pytest.approx(1.0)  # flops ∝ d·w²·r²
    fd, fw, fg, fr = st.factors(4.0)
    assert fd * fw**2 * fr**2 == pytest.approx(4.0)


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1 / 3, 0.5, 0.8, 1.0])
def test_alpha_family_matches_the_table(alpha):
    e_d, e_w, _, e_r = alpha_strategy(alpha).exponents
    assert e_d == pytest.approx((1 - alpha) / 2)
    assert e_w == pytest.approx(alpha / 2)
    assert e_r == pytest.approx((1 - alpha) / 4)


def test_named_members_of_the_alpha_family():
    assert get_strategy("dWr").same_as(alpha_strategy(0.8))
    assert get_strategy("dwr").same_as(alpha_strategy(1 / 3))
    assert get_strategy("w").same_as(alpha_strategy(1))
    assert get_strategy("dr").same_as(alpha_strategy(0))
    assert get_strategy(alpha=0.8).same_as(get_strategy("d1_w8_g8_r1"))
    assert get_strategy() == get_strategy("dWr")  # the paper's default
    # case matters: dWr is fast scaling, dwr is uniform compound scaling
    assert not get_strategy("dWr").same_as(get_strategy("dwr"))


def test_weight_strings():
    st = get_strategy("d1_w8_g8_r1")
    assert (st.d, st.w, st.g, st.r) == (1, 8, 8, 1) and st.alpha == pytest.approx(0.8)
    assert get_strategy("d1_w1_g1_r1").same_as(get_strategy("dwr"))
    frozen = get_strategy("d1_w2_g0_r1")
    assert frozen.exponents[2] == 0 and frozen.alpha is None  # g0 keeps group width fixed
    assert get_strategy("w2.5_g2.5").same_as(get_strategy("w"))


@pytest.mark.parametrize("text", ["d1_w8_r1", "w1", "d1_w1_r1", "d2_w3_r5", "r1", "d1_g4_w2"])
def test_weight_strings_follow_pycls(text):
    """pycls' scaler: an omitted letter weighs 0; S = d + w + r; depth s^(d/S), width
    s^(w/2S), group width s^(g/2S), resolution s^(r/2S) — flops grow by exactly s."""
    weights = {t[0]: float(t[1:]) for t in text.split("_")}
    d, w, g, r = (weights.get(k, 0.0) for k in "dwgr")
    total = d + w + r
    st = get_strategy(text)
    assert (st.d, st.w, st.g, st.r) == (d, w, g, r)
    assert st.exponents == pytest.approx(
        (d / total, w / (2 * total), g / (2 * total), r / (2 * total))
    )
    fd, fw, _, fr = st.factors(4.0)
    assert fd * fw**2 * fr**2 == pytest.approx(4.0)


def test_named_strategies_keep_their_meaning():
    for name, text in (("dWr", "d1_w8_g8_r1"), ("dwr", "d1_w1_g1_r1"), ("w", "w1_g1")):
        assert get_strategy(name).same_as(get_strategy(text))
    # the case the issue found: pycls keeps RegNetY-400MF's group width 8 under d1_w8_r1
    from planner.scale import scale_spec
    from spaces.registry import get_model

    base = get_model("RegNetY-400MF")
    assert set(scale_spec(base, "d1_w8_r1", 4).group_widths) == {8}
    assert scale_spec(base, "d1_w8_g8_r1", 4) == scale_spec(base, "dWr", 4)


def test_effnet_compound_rule():
    st = get_strategy("effnet")
    assert EFFNET_BASE == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    for phi in (1, 2.5):
        s = EFFNET_BASE**phi
        fd, fw, _, fr = st.factors(s)
        assert (fd, fw, fr) == pytest.approx((1.2**phi, 1.1**phi, 1.15**phi))
    assert math.isclose(st.width_share, 2 * math.log(1.1) / math.log(EFFNET_BASE))


def test_factors_accept_arrays():
    s = np.array([1.0, 2.0, 8.0])
    fd, fw, fg, fr = get_strategy("dwr").factors(s)
    assert fd.shape == (3,) and fd[2] == pytest.approx(2.0) and fw[0] == 1.0


@pytest.mark.parametrize("bad", ["DWR", "x", "d1_q2", "d1_d2", "", "d-1", "alpha"])
def test_unknown_names_list_the_allowed_values(bad):
    with pytest.raises(StrategyError) as err:
        get_strategy(bad)
    assert isinstance(err.value, FastscaleError)
    assert "dWr" in str(err.value) and "d1_w8_g8_r1" in str(err.value)


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan"), "high"])
def test_alpha_outside_unit_interval(bad):
    with pytest.raises(StrategyError, match=r"\[0, 1\]"):
        get_strategy(alpha=bad)


def test_name_and_alpha_together_or_nothing_scaled():
    with pytest.raises(StrategyError):
        get_strategy("w", alpha=0.5)
    with pytest.raises(StrategyError, match="scales nothing"):
        get_strategy("g8")


def test_alpha_grid_has_exact_decimals():
    grid = alpha_grid()
    assert len(grid) == 21 and grid[0] == 0 and grid[-1] == 1 and 0.8 in grid
