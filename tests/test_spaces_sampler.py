"""The regime sampler: in-window, distinct, valid, 4-stage, seeded, constraint-aware."""

import pytest

from spaces import complexity, sample
from spaces.sampler import DesignSpace, Range, SamplerError


def test_sample_is_in_regime_distinct_and_exact():
    drawn = sample("regnety", 4e9, n=32, seed=0)
    assert len(drawn) == 32
    archs = set()
    for d in drawn:
        spec = d["spec"]
        assert 0.99 * 4e9 <= d["flops"] <= 1.01 * 4e9
        assert tuple(complexity(spec)) == (d["flops"], d["params"], d["acts"])
        stages = spec.stages()
        assert len(stages.depths) == 4
        assert 12 <= spec.depth <= 28 and 8 <= spec.w0 <= 256 and 2.0 <= spec.wm <= 3.0
        archs.add((stages.depths, stages.widths, stages.group_widths))
    assert len(archs) == 32


def test_sample_is_deterministic_for_a_seed():
    a = [d["spec"] for d in sample("regnetx", 400e6, n=8, seed=3)]
    b = [d["spec"] for d in sample("regnetx", 400e6, n=8, seed=3)]
    c = [d["spec"] for d in sample("regnetx", 400e6, n=8, seed=4)]
    assert a == b and a != c


def test_regnetz_reaches_small_group_widths():
    drawn = sample("regnetz", 500e6, n=32, seed=0)
    groups = {d["spec"].group_width for d in drawn}
    assert groups & {1, 2, 4}
    assert all(g in (1, 2, 4) or g % 8 == 0 for g in groups)
    assert all(d["spec"].bottleneck == 4.0 for d in drawn)


def test_constraints_and_sampled_resolution():
    space = DesignSpace.named("regnety", resolution=Range(64, 128, log=False, step=4))
    drawn = sample(space, 100e6, n=16, seed=1, max_params=3e6, max_acts=2e6, tolerance=0.05)
    assert all(d["params"] <= 3e6 and d["acts"] <= 2e6 for d in drawn)
    resolutions = {d["spec"].resolution for d in drawn}
    assert len(resolutions) > 1 and all(r % 4 == 0 and 64 <= r <= 128 for r in resolutions)


def test_impossible_regime_says_what_was_seen():
    with pytest.raises(SamplerError, match=r"only 0 of 2 models .* draws .*flops seen"):
        sample("regnetx", 1e6, n=2, max_draws=20000)


def test_unknown_space():
    with pytest.raises(SamplerError, match="allowed: regnetx, regnety, regnetz"):
        DesignSpace.named("resnet")
