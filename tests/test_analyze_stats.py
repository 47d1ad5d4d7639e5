"""trials.analysis.stats against independent computations: scipy's KS statistic and exact
p-value, closed forms for the EDF, normalisation and the expected best of m, and bootstrap
band coverage on a known distribution."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from trials.analysis import stats


def test_edf_counts_ties_and_weights():
    x, f = stats.edf([3.0, 1.0, 2.0, 2.0])
    assert x.tolist() == [1.0, 2.0, 3.0]
    assert f.tolist() == [0.25, 0.75, 1.0]
    _, fw = stats.edf([1.0, 2.0, 3.0], weights=[2, 1, 1], grid=[0.5, 1.0, 2.5, 9.0])
    assert fw.tolist() == [0.0, 0.5, 0.75, 1.0]


def test_edf_equals_scipy_ecdf():
    e = np.random.default_rng(3).normal(size=257)
    x, f = stats.edf(e)
    assert np.allclose(f, scipy.stats.ecdf(e).cdf.evaluate(x))


def test_normalisation_gives_every_population_one_flops_distribution():
    """Population A is skewed to low flops, B to high; after reweighting, each of the shared
    bins carries the same mass in both (uniform in log-flops)."""
    rng = np.random.default_rng(0)
    a = np.exp(rng.uniform(np.log(1e8), np.log(1e9), 4000) ** 1) * rng.uniform(1, 1.0001, 4000)
    a = np.sort(a)[:3000]  # fewer large models
    b = np.sort(np.exp(rng.uniform(np.log(1e8), np.log(1e9), 4000)))[1000:]  # fewer small
    wa, wb = stats.normalize_weights([a, b], bins=5)  # 3000 models: 5 bins
    assert wa.sum() == pytest.approx(1) and wb.sum() == pytest.approx(1)
    lo, hi = max(np.log(a.min()), np.log(b.min())), min(np.log(a.max()), np.log(b.max()))
    edges = np.linspace(lo, hi, 6)
    for flops, w in ((a, wa), (b, wb)):
        which = np.clip(np.searchsorted(edges, np.log(flops), side="right") - 1, 0, 4)
        mass = np.bincount(which, w, minlength=5)
        assert np.allclose(mass, 0.2)
        outside = (np.log(flops) < lo) | (np.log(flops) > hi)
        assert (w[outside] == 0).all()


def test_normalisation_changes_a_confounded_edf():
    """Error falls with flops; a population skewed to small models looks worse unweighted and
    the same as an unskewed one once both are normalised."""
    rng = np.random.default_rng(1)
    flops_even = np.exp(rng.uniform(0, 1, 20000))
    flops_small = np.exp(rng.uniform(0, 1, 20000) ** 3)  # most models small
    err = lambda f: 1 - 0.5 * np.log(f) + rng.normal(0, 0.01, len(f))  # noqa: E731
    e_even, e_small = err(flops_even), err(flops_small)
    w_even, w_small = stats.normalize_weights([flops_even, flops_small], bins=20)
    assert np.median(e_small) > np.median(e_even) + 0.05
    assert stats.weighted_quantile(e_small, 0.5, w_small) == pytest.approx(
        stats.weighted_quantile(e_even, 0.5, w_even), abs=0.01
    )


def test_regime_windows_keep_equal_weights_and_disjoint_ranges_are_refused():
    w = stats.normalize_weights([np.full(5, 2e7) * np.linspace(0.999, 1.001, 5), np.full(3, 2e7)])
    assert [x.tolist() for x in w] == [[0.2] * 5, [1 / 3] * 3]
    with pytest.raises(ValueError, match="share no flops range"):
        stats.normalize_weights([np.array([1e6, 2e6]), np.array([1e9, 2e9])])


def test_bootstrap_band_covers_the_true_cdf():
    """Uniform(0, 1): the true CDF at 0.3 is 0.3; a 90 % band holds it in ~90 % of samples."""
    rng = np.random.default_rng(7)
    hits = 0
    for seed in range(200):
        e = rng.uniform(size=150)
        _, bands, _ = stats.edf_band(e, grid=[0.3], b=400, level=0.9, seed=seed)
        hits += bands.lo[0] <= 0.3 <= bands.hi[0]
    assert 0.82 <= hits / 200 <= 0.97


def test_bootstrap_is_seeded():
    e = np.random.default_rng(0).normal(size=50)
    a = stats.edf_band(e, b=100, seed=5)[1]
    b = stats.edf_band(e, b=100, seed=5)[1]
    c = stats.edf_band(e, b=100, seed=6)[1]
    assert np.array_equal(a.lo, b.lo) and not np.array_equal(a.lo, c.lo)


@pytest.mark.parametrize("shift", [0.0, 0.4, 1.0])
def test_ks_statistic_and_permutation_p_match_scipy(shift):
    """No ties: the permutation distribution of D is the exact null distribution scipy uses."""
    rng = np.random.default_rng(int(shift * 10))
    a, b = rng.normal(size=30), rng.normal(shift, size=40)
    exact = scipy.stats.ks_2samp(a, b, method="exact")
    d, p = stats.ks_permutation(a, b, permutations=4000, seed=1)
    assert d == pytest.approx(exact.statistic, abs=1e-12)
    assert stats.ks_statistic(a, b) == pytest.approx(exact.statistic, abs=1e-12)
    assert p == pytest.approx(exact.pvalue, abs=0.025)


def test_ks_with_ties_equals_scipy_and_weights_of_one_change_nothing():
    a = np.array([1, 2, 2, 3, 3, 3], float)
    b = np.array([2, 3, 3, 4, 4], float)
    assert stats.ks_statistic(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic)
    plain = stats.ks_permutation(a, b, permutations=500, seed=2)
    weighted = stats.ks_permutation(a, b, np.ones(6), np.ones(5), permutations=500, seed=2)
    assert plain == pytest.approx(weighted)


def test_expected_best_of_m_matches_the_closed_form():
    """n distinct errors 1..n, m draws with replacement: P(best >= k) = ((n-k+1)/n)^m."""
    n = 10
    e = np.arange(1, n + 1, dtype=float)
    out = stats.best_of_m(e, b=50, seed=0)
    k = np.arange(1, n + 1)
    for m, value in zip(out["m"], out["value"], strict=True):
        closed = (((n - k + 1) / n) ** m).sum()  # E[X] = sum_k P(X >= k)
        assert value == pytest.approx(closed)
    assert out["value"][0] == pytest.approx(e.mean())
    assert (np.diff(out["value"]) < 0).all()
    assert (out["lo"] <= out["value"] + 1e-9).all() and (out["value"] <= out["hi"] + 1e-9).all()


def test_share_within_and_quantile_band():
    e = np.array([0.10, 0.104, 0.1049, 0.106, 0.3])
    assert stats.share_within(e, 5.0) == pytest.approx(0.6)  # 0.106 > 0.105
    value, lo, hi = stats.quantile_band(e, 0.4, b=200)
    assert value == pytest.approx(0.104) and lo <= value <= hi
