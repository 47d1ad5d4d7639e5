"""Scaling vs search vs hybrid (the paper's §6.4; docs/compare.md) as ONE resumable study.

Round A trains, per design space: the base model (a fixed spec, or the best of a small
search at the base regime) and N random samples at the intermediate and at the top regime.
Round B scales the best base model to both regimes with every strategy (scaling) and the
best intermediate sample to the top regime (hybrid), each solved by the planner to land on
the regime's flops. Round C retrains finalists with the finalist schedule and extra seeds,
which gives the seed-to-seed spread the verdict is judged against. Every round is a
`run_study` into the same directory, so a re-run reuses every completed trial.

Candidate construction (`round_a`, `round_b`, `finalists`, here) is pure and deterministic
for a preset seed; only `run_compare` (trials.compare.run) trains.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from planner.solve import solve
from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.registry import get_model
from spaces.sampler import DesignSpace, sample
from spaces.specs import spec_from_dict
from trials.compare.preset import Preset
from trials.data.catalogue import dataset_info
from trials.study import Candidate

META_FILE = "compare.json"


class CompareError(FastscaleError):
    """A comparison that cannot be planned (e.g. a regime the planner cannot reach)."""


def model_id(spec) -> str:
    """Short stable hash of the spec: the same network keeps its id across seeds and rounds."""
    text = json.dumps(spec.to_dict(), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def dataset_shape(dataset: str) -> tuple[int, int]:
    """(in_channels, num_classes) of a dataset from the catalogue (DatasetMissing if absent)."""

    info = dataset_info(dataset)
    return info.channels, info.classes


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _tags(method, space, level, preset: Preset, spec, strategy="", source="", phase="first"):
    return {
        "method": method,
        "space": space,
        "level": level,
        "regime": preset.label(level),
        "strategy": strategy,
        "phase": phase,
        "model": model_id(spec),
        "source": source,
    }


def _space(preset: Preset, space: str, shape: tuple[int, int]):
    fixed = {"in_channels": shape[0], "num_classes": shape[1]}
    return DesignSpace.named(space, resolution=preset.resolution, fixed=fixed)


def fixed_base(preset: Preset, space: str, shape: tuple[int, int]):
    """The base spec of {model: NAME} or {spec: {...}}, at the preset's resolution and data."""

    entry = preset.base[space]
    spec = get_model(entry["model"]) if "model" in entry else spec_from_dict(entry["spec"])
    return spec.replace(resolution=preset.resolution, in_channels=shape[0], num_classes=shape[1])


def round_a(preset: Preset, shape: tuple[int, int], n: int | None = None) -> list:
    """Base model(s) and the searched samples at the intermediate and top regimes."""

    n = n or preset.samples
    out = []
    for i, space in enumerate(preset.spaces):
        ds = _space(preset, space, shape)
        entry = preset.base[space]
        if "search" in entry:
            levels = [("base", int(entry["search"]))]
        else:
            spec = fixed_base(preset, space, shape)
            out.append(Candidate(spec, _tags("base", space, "base", preset, spec)))
            levels = []
        levels += [("intermediate", n), ("top", n)]
        for level, count in levels:
            seed = _seed(preset.seed, i, ("base", "intermediate", "top").index(level))
            for rec in sample(ds, preset.regimes[level], count, preset.tolerance, seed):
                spec = rec["spec"]
                out.append(Candidate(spec, _tags("search", space, level, preset, spec)))
    return out


def scale_to(spec, strategy: str, target: int, tolerance: float):
    """The planner's solution for spec → target flops with a strategy (a StageSpec)."""

    return solve(spec, strategy, target, tolerance=tolerance).spec


def best_row(results, **tags):
    """The completed first-round row with the lowest error among rows with these tags."""
    df = results
    if "status" in df:
        df = df[df["status"] == "done"]
    for k, v in tags.items():
        if k not in df:
            return None
        df = df[df[k].astype(str) == str(v)]
    df = df[df["error"].notna()]
    if df.empty:
        return None
    return df.loc[df["error"].astype(float).idxmin()]


def round_b(preset: Preset, shape, results, candidates_a: list) -> list:
    """Scaling of the base (to intermediate and top) and hybrid (intermediate best → top)."""

    by_model = {c.tags["model"]: c.spec for c in candidates_a}
    out = []
    for space in preset.spaces:
        method = "search" if "search" in preset.base[space] else "base"
        sources = [
            (
                "scaling",
                best_row(results, method=method, space=space, level="base", phase="first"),
                ("intermediate", "top"),
            )
        ]
        sources.append(
            (
                "hybrid",
                best_row(
                    results, method="search", space=space, level="intermediate", phase="first"
                ),
                ("top",),
            )
        )
        for method_b, row, levels in sources:
            if row is None:  # every source trial failed: nothing to scale
                continue
            src = by_model[row["model"]]
            for level in levels:
                for strategy in preset.strategies:
                    spec = scale_to(src, strategy, preset.regimes[level], preset.tolerance)
                    tags = _tags(method_b, space, level, preset, spec, strategy, row["model"])
                    out.append(Candidate(spec, tags))
    return out


def finalists(preset: Preset, results, candidates: list) -> list:
    """The models the finalist round retrains: per space and level, the best of each method
    (or every scaled/hybrid model with select: all), tagged phase=final."""

    fin = preset.finalists
    if fin is None:
        return []
    by_model = {c.tags["model"]: c for c in candidates}
    chosen = []
    for space in preset.spaces:
        for level in fin.levels:
            for method in ("search", "scaling", "hybrid"):
                keys = [{}] if method == "search" else [{"strategy": s} for s in preset.strategies]
                rows = [
                    best_row(results, method=method, space=space, level=level, phase="first", **k)
                    for k in keys
                ]
                rows = [r for r in rows if r is not None]
                if fin.select == "best-per-method" and rows:
                    rows = [min(rows, key=lambda r: float(r["error"]))]
                chosen += [r["model"] for r in rows]
    out = []
    for m in dict.fromkeys(chosen):
        c = by_model[m]
        out.append(Candidate(c.spec, {**c.tags, "phase": "final"}))
    return out


def dedupe(candidates: list) -> list:
    seen, out = set(), []
    for c in candidates:
        if c.tags["model"] not in seen:
            seen.add(c.tags["model"])
            out.append(c)
    return out


def longest_first(candidates: list) -> list:
    """The candidates in the order their trainings should start: most flops first (ties keep
    their order). With a round's trainings spread over a few workers, starting the longest
    first leaves the short ones to fill the end of the round (the longest-processing-time
    rule), instead of one long training running alone while the other workers idle."""
    return sorted(candidates, key=lambda c: -complexity(c.spec).flops)


def planned_work(preset: Preset, round_a_count: int, config) -> dict:
    """Trainings per round, announced before any runs: A exactly, B and C as upper bounds
    (rounds B and C depend on A's results; duplicates are trained once)."""
    spaces, strategies = len(preset.spaces), len(preset.strategies)
    fin = preset.finalists
    per_seed = 0
    if fin is not None:
        for level in fin.levels:
            methods = 2 + (level == "top")  # search, scaling, and hybrid at the top regime
            per_seed += 1 + (methods - 1) * strategies if fin.select == "all" else methods
        seeds = [s for s in fin.seeds if config.replace(epochs=fin.epochs, seed=s) != config]
    return {
        "A": round_a_count,
        "B": spaces * strategies * 3,  # scaling to 2 regimes + hybrid to the top, per strategy
        "C": spaces * per_seed * len(seeds) if fin is not None else 0,
    }
