"""Population statistics of design spaces, the RegNet papers' way (Radosavovic et al. 2019,
"On Network Design Spaces for Visual Recognition", §3-4; 2020, "Designing Network Design
Spaces", §3): error EDFs (optionally complexity-normalised), bootstrap bands, the two-sample
KS statistic with a permutation p-value, the expected best error of a random search of m
models, and the share of models near the best. Pure numpy, vectorised: 1e5 results in
seconds (benchmarks/bench_analyze.py). See docs/analysis.md.

Every function takes errors as a 1-d float array and optional non-negative weights (the
complexity normalisation's); weights are normalised to sum to 1 inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GRID = 1000  # EDF grid points: every distinct error up to this many, quantiles beyond
WINDOW = 0.25  # a population spanning less than +25 % in flops is one regime window
MIN_PER_BIN = 10  # normalisation bins hold this many models of the smallest population
CHUNK_CELLS = 20_000_000  # cap on (resamples x points) held at once by the bootstrap


def _weights(n: int, weights) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, float)
    return w / w.sum()


def edf(errors, weights=None, grid=None) -> tuple[np.ndarray, np.ndarray]:
    """(x, F): F[k] = the (weighted) share of models with error <= x[k]. Without a grid, x
    holds the distinct errors."""
    e = np.asarray(errors, float)
    order = np.argsort(e, kind="stable")
    e, w = e[order], _weights(len(e), weights)[order]
    cum = np.cumsum(w)
    x = np.unique(e) if grid is None else np.asarray(grid, float)
    at = np.searchsorted(e, x, side="right")
    return x, np.where(at > 0, cum[np.maximum(at - 1, 0)], 0.0)


def edf_grid(errors) -> np.ndarray:
    """The points an EDF is evaluated at: the distinct errors, or MAX_GRID quantiles."""
    x = np.unique(np.asarray(errors, float))
    if len(x) <= MAX_GRID:
        return x
    return np.unique(np.quantile(x, np.linspace(0, 1, MAX_GRID)))


def normalize_weights(flops_by_population: list, bins: int = 10) -> list[np.ndarray]:
    """Complexity normalisation (Radosavovic 2019 §3, "normalized comparisons"): weights that
    give every population the same flops distribution, uniform in log-flops over up to
    `bins` bins (at least MIN_PER_BIN models per bin in the smallest population) spanning the
    range all populations share. Models outside it weigh 0; a bin some population leaves
    empty is dropped for all. Populations drawn from one regime window (each spanning under
    WINDOW in flops) are matched already and keep equal weights."""
    logs = [np.log(np.asarray(f, float)) for f in flops_by_population]
    if all(v.max() - v.min() < np.log1p(WINDOW) for v in logs):
        return [np.full(len(v), 1.0 / len(v)) for v in logs]
    lo, hi = max(v.min() for v in logs), min(v.max() for v in logs)
    if hi <= lo:
        raise ValueError("the populations share no flops range to normalise over")
    bins = int(np.clip(min(len(v) for v in logs) // MIN_PER_BIN, 1, bins))
    edges = np.linspace(lo, hi, bins + 1)
    which = [np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1) for v in logs]
    inside = [(v >= lo) & (v <= hi) for v in logs]
    counts = np.array(
        [np.bincount(b[m], minlength=bins) for b, m in zip(which, inside, strict=True)]
    )
    shared = (counts > 0).all(axis=0)
    if not shared.any():
        raise ValueError("the populations share no flops range to normalise over")
    out = []
    for b, m, c in zip(which, inside, counts, strict=True):
        w = np.where(m & shared[b], 1.0 / np.maximum(c[b], 1), 0.0)
        out.append(w / w.sum())
    return out


def _resample_cdfs(errors, weights, grid, b: int, rng) -> np.ndarray:
    """(b, len(grid)) EDFs of bootstrap resamples: n models drawn with replacement, each
    keeping its weight (the weighted EDF of the resample). Each model is binned on the grid
    once; a resample is then a (weighted) bincount."""
    n, g = len(errors), len(grid)
    cell = np.searchsorted(grid, errors, side="left")  # F(grid[k]) counts e <= grid[k]
    out = np.empty((b, g))
    step = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, b, step):
        rows = min(step, b - start)
        picks = rng.integers(0, n, size=(rows, n))
        flat = (cell[picks] + (g + 1) * np.arange(rows)[:, None]).ravel()
        mass = None if weights is None else weights[picks].ravel()
        counts = np.bincount(flat, mass, minlength=rows * (g + 1)).reshape(rows, g + 1)
        total = counts.sum(axis=1, keepdims=True)
        out[start : start + rows] = np.cumsum(counts[:, :g], axis=1) / np.maximum(total, 1e-300)
    return out


@dataclass(frozen=True)
class Bands:
    """A bootstrap band: the point estimate and its [lo, hi] percentiles, per grid point."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def edf_band(errors, weights=None, grid=None, b=1000, level=0.95, seed=0) -> tuple:
    """(grid, Bands) of the EDF; the band holds `level` of b bootstrap EDFs per point."""
    e = np.asarray(errors, float)
    grid = edf_grid(e) if grid is None else np.asarray(grid, float)
    w = None if weights is None else _weights(len(e), weights)
    _, value = edf(e, weights, grid)
    boot = _resample_cdfs(e, w, grid, b, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail], axis=0)
    return grid, Bands(value, lo, hi), boot


def expected_best(grid, cdf, m) -> np.ndarray:
    """E[min error of m models drawn at random] from an EDF on `grid` (each point stands for
    the mass up to it): sum_k x_k [(1 - F_{k-1})^m - (1 - F_k)^m]. cdf may be (..., G)."""
    cdf = np.clip(np.asarray(cdf, float), 0.0, 1.0)
    log_survive = np.log(np.maximum(1.0 - cdf, 1e-300))[..., None, :]  # (..., 1, G)
    m = np.asarray(m, float)[:, None]  # (M, 1)
    survive = np.where(cdf[..., None, :] >= 1.0, 0.0, np.exp(m * log_survive))  # (..., M, G)
    before = np.concatenate([np.ones_like(survive[..., :1]), survive[..., :-1]], axis=-1)
    mass = before - survive
    return (mass * grid).sum(-1) / np.maximum(mass.sum(-1), 1e-300)


def m_values(n: int, points: int = 40) -> np.ndarray:
    """Search budgets m = 1..n: all of them for small n, log-spaced beyond `points`."""
    if n <= points:
        return np.arange(1, n + 1)
    return np.unique(np.round(np.geomspace(1, n, points)).astype(int))


def best_of_m(errors, weights=None, b=1000, level=0.95, seed=0, points=40, boot=None) -> dict:
    """The expected best error of a random search of m models (m = 1..n) with its bootstrap
    band: what a search budget of m buys in this design space. `boot` reuses an
    edf_band(...) result (same errors, weights and grid)."""
    e = np.asarray(errors, float)
    grid, bands, resampled = boot or edf_band(e, weights, b=b, level=level, seed=seed)
    m = m_values(len(e), points)
    value = expected_best(grid, bands.value, m)
    per_resample = expected_best(grid, resampled, m)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(per_resample, [tail, 100 - tail], axis=0)
    return {"m": m, "value": value, "lo": lo, "hi": hi}


def ks_statistic(a, b, wa=None, wb=None) -> float:
    """The two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b| of (weighted) EDFs."""
    grid = np.unique(np.concatenate([np.asarray(a, float), np.asarray(b, float)]))
    _, fa = edf(a, wa, grid)
    _, fb = edf(b, wb, grid)
    return float(np.abs(fa - fb).max())


def ks_permutation(a, b, wa=None, wb=None, permutations=1000, seed=0) -> tuple[float, float]:
    """(D, p): the KS statistic and its permutation p-value, (1 + #{D* >= D}) / (1 + P),
    relabelling the pooled models at random; each model keeps its weight (relative to its
    population's mean), renormalised in its new group. Vectorised over permutations in
    chunks."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = ks_statistic(a, b, wa, wb)
    pooled = np.concatenate([a, b])
    # weights scaled to mean 1 in each population, so relabelled models stay comparable
    w = np.concatenate([_weights(len(a), wa) * len(a), _weights(len(b), wb) * len(b)])
    order = np.argsort(pooled, kind="stable")
    pooled, w = pooled[order], w[order]
    # evaluate each EDF at the last of every run of tied values
    last = np.r_[pooled[1:] != pooled[:-1], True]
    cum_w = np.cumsum(w)
    rng = np.random.default_rng(seed)
    hits, step = 0, max(1, CHUNK_CELLS // len(pooled))
    for start in range(0, permutations, step):
        rows = min(step, permutations - start)
        is_a = _relabel(rng, rows, len(pooled), len(a))
        if wa is None and wb is None:  # counts only: one cumulative sum per chunk
            ca = np.cumsum(is_a, axis=1, dtype=np.int32)[:, last]
            cb = np.flatnonzero(last)[None, :] + 1 - ca
            stats = np.abs(ca / len(a) - cb / len(b)).max(axis=1)
        else:  # F_b = (W_k - Wa_k) / (W - Wa): one cumulative sum per chunk
            wa_p = np.where(is_a, w, 0.0)
            cum_a = np.cumsum(wa_p, axis=1)
            total_a = cum_a[:, -1:]
            fa = cum_a[:, last] / total_a
            fb = (cum_w[last] - cum_a[:, last]) / (cum_w[-1] - total_a)
            stats = np.abs(fa - fb).max(axis=1)
        hits += int((stats >= d - 1e-12).sum())
    return d, (1 + hits) / (1 + permutations)


def _relabel(rng, rows: int, n: int, k: int) -> np.ndarray:
    """(rows, n) random labellings with k models labelled True, each uniform over all
    C(n, k) (a sample without replacement per row: much faster than permuting rows)."""
    flip = k > n // 2
    picks = min(k, n - k)
    out = np.full((rows, n), flip)
    for row in range(rows):
        out[row, rng.choice(n, picks, replace=False)] = not flip
    return out


def weighted_quantile(errors, q, weights=None) -> float:
    """The smallest error whose (weighted) EDF reaches q."""
    x, f = edf(errors, weights)
    return float(x[min(np.searchsorted(f, q - 1e-12), len(x) - 1)])


def quantile_band(errors, q, weights=None, b=1000, level=0.95, seed=0, boot=None) -> tuple:
    """(value, lo, hi): the q-quantile error and its bootstrap band (`boot` as in best_of_m)."""
    grid, _, resampled = boot or edf_band(errors, weights, b=b, level=level, seed=seed)
    idx = np.minimum((resampled < q - 1e-12).sum(axis=1), len(grid) - 1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(grid[idx], [tail, 100 - tail])
    return weighted_quantile(errors, q, weights), float(lo), float(hi)


def share_within(errors, percent: float, weights=None) -> float:
    """The (weighted) share of models whose error is within `percent` % (relative) of the
    best: error <= best * (1 + percent / 100)."""
    e = np.asarray(errors, float)
    w = _weights(len(e), weights)
    return float(w[e <= e[w > 0].min() * (1 + percent / 100)].sum())
