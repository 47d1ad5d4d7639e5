"""Scaling vs search vs hybrid (the paper's §6.4; docs/compare.md) as ONE resumable study.

Round A trains, per design space: the base model (a fixed spec, or the best of a small
search at the base regime) and N random samples at the intermediate and at the top regime.
Round B scales the best base model to both regimes with every strategy (scaling) and the
best intermediate sample to the top regime (hybrid), each solved by the planner to land on
the regime's flops. Round C retrains finalists with the finalist schedule and extra seeds,
which gives the seed-to-seed spread the verdict is judged against. Every round is a
`run_study` into the same directory, so a re-run reuses every completed trial.

Candidate construction (`round_a`, `round_b`, `finalists`) is pure and deterministic for a
preset seed; only `run_compare` trains.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from spaces.errors import FastscaleError
from spaces.safe_write import prepare_dir, write_file
from trials.compare_preset import Preset

META_FILE = "compare.json"


class CompareError(FastscaleError):
    """A comparison that cannot be planned (e.g. a regime the planner cannot reach)."""


def model_id(spec) -> str:
    """Short stable hash of the spec: the same network keeps its id across seeds and rounds."""
    text = json.dumps(spec.to_dict(), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def dataset_shape(dataset: str) -> tuple[int, int]:
    """(in_channels, num_classes) of a dataset from the catalogue (DatasetMissing if absent)."""
    from trials.data import dataset_info

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
    from spaces.sampler import DesignSpace

    fixed = {"in_channels": shape[0], "num_classes": shape[1]}
    return DesignSpace.named(space, resolution=preset.resolution, fixed=fixed)


def fixed_base(preset: Preset, space: str, shape: tuple[int, int]):
    """The base spec of {model: NAME} or {spec: {...}}, at the preset's resolution and data."""
    from spaces.registry import get_model
    from spaces.specs import spec_from_dict

    entry = preset.base[space]
    spec = get_model(entry["model"]) if "model" in entry else spec_from_dict(entry["spec"])
    return spec.replace(resolution=preset.resolution, in_channels=shape[0], num_classes=shape[1])


def round_a(preset: Preset, shape: tuple[int, int], n: int | None = None) -> list:
    """Base model(s) and the searched samples at the intermediate and top regimes."""
    from spaces.sampler import sample
    from trials.study import Candidate

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
    from planner.solve import solve

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
    from trials.study import Candidate

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
    from trials.study import Candidate

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


def _dedupe(candidates: list) -> list:
    seen, out = set(), []
    for c in candidates:
        if c.tags["model"] not in seen:
            seen.add(c.tags["model"])
            out.append(c)
    return out


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"[compare] {text}", file=sys.stderr, flush=True)


def run_compare(
    preset: Preset,
    out_dir: str | Path,
    *,
    address: str | None = None,
    n: int | None = None,
    dataset: str | None = None,
    progress: bool = True,
) -> dict:
    """Run (or resume) the whole comparison in out_dir and write out_dir/report.html.

    Returns {"report": path, "wall_s": seconds of this invocation, "trials": count,
    "verdict": [...], "sentences": [...]}.
    """
    import pandas as pd

    from trials.recipe import TrainConfig
    from trials.report import build_report
    from trials.study import Candidate, run_study

    start = time.time()
    _refuse_other_study(out_dir)
    dataset = dataset or preset.dataset
    if not dataset:
        raise CompareError(f"preset {preset.name!r} has no dataset; pass --dataset PATH")
    shape = dataset_shape(dataset)
    config = TrainConfig.from_dict({**preset.train, "dataset": dataset})
    out_dir = prepare_dir(out_dir)
    res = {
        "cpus_per_trial": preset.cpus_per_trial,
        "gpus_per_trial": preset.gpus_per_trial,
        "address": address,
        "progress": progress,
    }

    frames = []

    def study(cands, cfg, what):
        """Train one round; the rows of this comparison so far (not stale ones in the dir)."""
        _say(progress, f"{what}: {len(cands)} candidate(s), {cfg.epochs} epoch(s), seed {cfg.seed}")
        cands = [Candidate(c.spec, {**c.tags, "schedule": str(cfg.epochs)}) for c in cands]
        rows = run_study(out_dir, _dedupe(cands), cfg, **res)
        open_ = rows[rows["status"].isin(["pending", "running"])]
        if len(open_):  # interrupted (Tune stops on Ctrl-C and returns): later rounds need it
            raise CompareError(
                f"{what} stopped with {len(open_)} of {len(rows)} trials unfinished; "
                "re-run the same command to resume (completed trials are kept)"
            )
        frames.append(rows)
        return pd.concat(frames, ignore_index=True).drop_duplicates("key", keep="last")

    from trials.study.runner import connect

    started = connect(address)  # one Ray for every round (run_study reuses it)
    try:
        results, candidates = _rounds(preset, shape, n, config, study, progress)
    finally:
        if started:
            import ray

            ray.shutdown()
    timing = _timing(out_dir, results, candidates, config, progress)
    wall = time.time() - start
    meta = _write_meta(out_dir, preset, dataset, n, wall, list(results["key"]), timing)
    path = build_report(results, out_dir, meta)
    _say(progress, f"report: {path}")
    summary = json.loads((out_dir / "summary.json").read_text())
    return {
        "report": str(path),
        "wall_s": wall,
        "trials": int(len(results)),
        "verdict": summary["verdict"],
        "sentences": summary["sentences"],
    }


def _timing(out_dir: Path, results, candidates: list, config, progress: bool) -> dict | None:
    """The one timing pass over every trained first-round model (trials.compare_timing)."""
    from trials.compare_timing import epoch_images, timing_pass

    if not epoch_images(config):  # an ImageFolder without --train-size: epochs unknown here
        return None
    done = set(results.loc[results["status"] == "done", "model"].astype(str))
    specs = {c.tags["model"]: c.spec for c in candidates if c.tags["model"] in done}
    path = out_dir / META_FILE
    old = json.loads(path.read_text()).get("timing") if path.is_file() else None
    _say(progress, f"timing pass: {len(specs)} models, the same way for all (see the report)")
    return timing_pass(specs, config, old, progress=progress)


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


def _rounds(preset: Preset, shape, n, config, study, progress: bool = True):
    """Rounds A, B and C in order; each one's candidates depend on the previous results.
    Returns the results and every first-round candidate."""
    cand_a = round_a(preset, shape, n)
    work = planned_work(preset, len(_dedupe(cand_a)), config)
    _say(
        progress,
        f"{preset.name}: about {sum(work.values())} trainings in 3 rounds (A {work['A']}, "
        f"B up to {work['B']}, C up to {work['C']}); each round shows its own ETA",
    )
    results = study(cand_a, config, "round A (base + search)")
    cand_b = round_b(preset, shape, results, cand_a)
    results = study(cand_b, config, "round B (scaling + hybrid)")
    final = finalists(preset, results, cand_a + cand_b)
    if final:
        fin_cfg = config.replace(epochs=preset.finalists.epochs)
        for seed in preset.finalists.seeds:
            cfg = fin_cfg.replace(seed=seed)
            if cfg == config:  # same run as round A/B: already trained
                continue
            results = study(final, cfg, f"round C (finalists, seed {seed})")
    return results, cand_a + cand_b


def _refuse_other_study(out_dir: str | Path) -> None:
    """A comparison keeps its own study: never mix its candidates into one `study run` made
    (whose definition says where its candidates come from: a search space or spec files)."""
    from trials.study import StudyStore

    store = StudyStore(out_dir)
    if not store.exists():
        return
    source = store.check().get("source")
    if source != "api":
        raise CompareError(
            f"{str(out_dir)!r} holds a study made by `fastscale study run` (candidates from "
            f"{source!r}); a comparison keeps its own study: pass a new or empty --out"
        )


def _write_meta(
    out_dir: Path, preset: Preset, dataset: str, n, wall: float, keys: list, timing=None
):
    """compare.json: the preset as run, the study keys this comparison consists of (a
    rebuilt report shows only these) and every invocation's wall time (resumes append)."""
    import os
    import platform

    path = out_dir / META_FILE
    old = json.loads(path.read_text()) if path.is_file() else {}
    runs = old.get("runs", []) + [
        {
            "wall_s": round(wall, 1),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "trials": len(keys),
            "host": platform.node(),
            "cpus": os.cpu_count(),
        }
    ]
    meta = {
        "preset": preset.name,
        "preset_source": preset.source,
        "dataset": dataset,
        "samples": n or preset.samples,
        "regimes": dict(preset.labels),
        "config": preset.to_dict(),
        "runs": runs,
        "keys": keys,
        "timing": timing or old.get("timing"),
    }
    write_file(path, json.dumps(meta, indent=2, default=str))
    return meta


def rebuild_report(out_dir: str | Path, epoch_time_check: dict | None = None) -> Path:
    """The report from stored results only (no training); `epoch_time_check` adds the
    section on a runtime profile's predictions (trials.runtime_check)."""
    from trials.report import build_report
    from trials.study import load_results

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise CompareError(f"{str(out_dir)!r} is not a directory")
    meta_path = out_dir / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    results = load_results(out_dir)
    if meta.get("keys"):
        results = results[results["key"].isin(meta["keys"])]
    if len(results) == 0:
        raise CompareError(f"{str(out_dir)!r} holds no trial results")
    return build_report(results, out_dir, meta, epoch_time_check)
