"""The vectorized batch counter equals the scalar walk on thousands of random configurations."""

import numpy as np
import pytest

from spaces import complexity, regnet_complexity_batch
from spaces.generate import compat, quantized_widths, round_group_width
from spaces.specs import RegNetSpec, SpecError


def _random_configs(rng, n):
    d = rng.integers(1, 29, n)
    w0 = (np.round(np.exp(rng.uniform(np.log(8), np.log(256), n)) / 8) * 8).astype(int)
    wa = np.round(np.exp(rng.uniform(np.log(0.5), np.log(256), n)), 1)
    wm = np.round(np.exp(rng.uniform(np.log(1.5), np.log(3), n)), 3)
    g = rng.choice([1, 2, 4, 8, 16, 24, 48, 64, 120], n)
    res = rng.integers(4, 70, n) * 4
    return d, w0, wa, wm, g, res


@pytest.mark.parametrize("block", ["X", "Y", "Z"])
def test_batch_equals_scalar(block):
    rng = np.random.default_rng({"X": 1, "Y": 2, "Z": 3}[block])
    d, w0, wa, wm, g, res = _random_configs(rng, 1500)
    head = 0 if block != "Z" else 256
    batch = regnet_complexity_batch(block, d, w0, wa, wm, g, res, head_width=head, num_classes=10)
    n_valid = 0
    for i in range(len(d)):
        try:
            spec = RegNetSpec(
                block,
                d[i],
                w0[i],
                wa[i],
                wm[i],
                g[i],
                resolution=res[i],
                head_width=head,
                num_classes=10,
            )
        except SpecError:
            assert not batch["valid"][i], i
            continue
        n_valid += 1
        assert batch["valid"][i], i
        assert tuple(complexity(spec)) == (
            batch["flops"][i],
            batch["params"][i],
            batch["acts"][i],
        ), spec
        assert batch["num_stages"][i] == len(spec.stages().depths)
    assert n_valid > 1000  # the comparison really ran on many configurations


def test_quantized_widths_follow_the_rule():
    widths, ks, active = quantized_widths([13], [24], [36.44], [2.49])
    u = 24 + 36.44 * np.arange(13)
    k = np.round(np.log(u / 24) / np.log(2.49))
    assert (ks[0] == k).all() and active.all()
    assert (widths[0] == np.round(24 * 2.49**k / 8) * 8).all()


def test_compat_rounds_inner_width_to_lcm():
    w, g = compat([100], [4.0], [8])  # v=400, m=lcm(8,4)=8 -> 400 -> w=100
    assert (w[0], g[0]) == (100, 8)
    w, g = compat([52], [1.0], [24])  # v=52 rounds to 48 (nearest multiple of 24)
    assert (w[0], g[0]) == (48, 24)
    w, g = compat([16], [1.0], [64])  # g clamps to the width
    assert (w[0], g[0]) == (16, 16)


@pytest.mark.parametrize(
    ("g", "expected"),
    [(1, 1), (2.4, 2), (3, 4), (5, 4), (6, 8), (12, 16), (20, 16), (28, 32), (100, 96)],
)
def test_round_group_width(g, expected):
    assert int(round_group_width(g)) == expected


def test_skipped_stage_is_rejected():
    with pytest.raises(SpecError, match="skip a stage"):
        RegNetSpec("X", 10, 8, 0.5, 1.01, 8)
