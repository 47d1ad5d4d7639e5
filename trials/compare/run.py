"""Running a comparison (trials.compare.candidates builds its candidates): every round a `run_study`
into one directory, the timing pass, compare.json and the report (docs/compare.md).

Early stopping (`--scheduler asha`, trials.study.early_stop) is off by default: the paper's
search trains every candidate fully. When on, it is stored in the comparison's study
definition (a resume stops the same way) and the report says how many were stopped early.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from spaces.safe_write import check_output_dir, prepare_dir, write_file
from trials.compare.candidates import (
    META_FILE,
    CompareError,
    dataset_shape,
    dedupe,
    finalists,
    longest_first,
    planned_work,
    round_a,
    round_b,
)
from trials.compare.preset import Preset, preset_early_stop
from trials.compare.runtime_check import epoch_time_check
from trials.compare.timing_pass import epoch_images, timing_pass
from trials.study import Candidate, StudyStore, load_results, run_study
from trials.study.checks import check_fits, check_trial_resources, local_resources
from trials.study.early_stop import EarlyStop, checked
from trials.study.runner import connect
from trials.study.store import StudyError
from trials.training.recipe import TrainConfig


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
    early_stop: EarlyStop | None = None,
) -> dict:
    """Run (or resume) the whole comparison in out_dir and write out_dir/report.html.

    `early_stop`: a scheduler for every round (default: the preset's, else the stored one,
    else none). Returns {"report": path, "wall_s": seconds of this invocation, "trials":
    count, "stopped_early": count, "verdict": [...], "sentences": [...]}.
    """
    from trials.compare.report import build_report

    start = time.time()
    _refuse_other_study(out_dir)
    dataset = dataset or preset.dataset
    if not dataset:
        raise CompareError(f"preset {preset.name!r} has no dataset; pass --dataset PATH")
    shape = dataset_shape(dataset)
    config = TrainConfig.from_dict({**preset.train, "dataset": dataset})
    check_request(preset, out_dir, address)
    cand_a = round_a(preset, shape, n)  # sampled before anything is written or Ray starts
    stop = study_early_stop(out_dir, early_stop or preset_early_stop(preset), config.epochs)
    out_dir = prepare_dir(out_dir)
    study = Rounds(out_dir, preset, address, progress, stop)
    started = connect(address)  # one Ray for every round (run_study reuses it)
    try:
        results, candidates = _rounds(preset, shape, cand_a, config, study, progress)
    finally:
        if started:
            import ray

            ray.shutdown()
    timing = _timing(out_dir, results, candidates, config, progress)
    wall = time.time() - start
    meta = _write_meta(out_dir, preset, dataset, n, wall, list(results["key"]), timing, stop)
    path = build_report(results, out_dir, meta)
    _say(progress, f"report: {path}")
    summary = json.loads((out_dir / "summary.json").read_text())
    return {
        "report": str(path),
        "wall_s": wall,
        "trials": int(len(results)),
        "stopped_early": int(summary.get("n_stopped", 0)),
        "verdict": summary["verdict"],
        "sentences": summary["sentences"],
    }


def check_request(preset: Preset, out_dir, address: str | None) -> None:
    """What the whole comparison needs, checked before anything is written or Ray starts:
    a writable --out, and resources per trial that this machine's embedded Ray can give
    (a cluster's are checked once attached, by the first round's study)."""
    check_output_dir(out_dir, "--out")
    try:
        check_trial_resources(preset.cpus_per_trial, preset.gpus_per_trial)
        if address is None:
            cpus, gpus = local_resources(with_gpus=preset.gpus_per_trial > 0)
            check_fits(preset.cpus_per_trial, preset.gpus_per_trial, cpus, gpus)
    except StudyError as exc:
        raise CompareError(f"preset {preset.name!r} resources: {exc}") from None


class Rounds:
    """Trains one round of candidates (called by _rounds); keeps this comparison's rows."""

    def __init__(self, out_dir: Path, preset: Preset, address, progress: bool, stop: EarlyStop):
        self.out_dir, self.progress, self.stop = out_dir, progress, stop
        self.resources = {
            "cpus_per_trial": preset.cpus_per_trial,
            "gpus_per_trial": preset.gpus_per_trial,
            **preset.parallel,
            "address": address,
            "progress": progress,
        }
        self.frames: list = []

    def __call__(self, cands: list, cfg, what: str):
        """Train one round; the rows of this comparison so far (not stale ones in the dir)."""
        import pandas as pd

        _say(
            self.progress,
            f"{what}: {len(cands)} candidate(s), {cfg.epochs} epoch(s), seed {cfg.seed}",
        )
        cands = [Candidate(c.spec, {**c.tags, "schedule": str(cfg.epochs)}) for c in cands]
        # a round too short to judge anyone (grace >= its epochs) trains without a scheduler
        stop = self.stop if self.stop.active and self.stop.grace < cfg.epochs else None
        cands = dedupe(cands)
        # longest trainings first (fewer idle workers at the round's end); the rows go back
        # to the candidates' order, which later rounds' tie-breaks read
        rows = run_study(self.out_dir, longest_first(cands), cfg, early_stop=stop, **self.resources)
        order = {c.tags["model"]: i for i, c in enumerate(cands)}
        rows = rows.sort_values("model", key=lambda m: m.map(order), kind="stable")
        rows = rows.reset_index(drop=True)
        open_ = rows[rows["status"].isin(["pending", "running"])]
        if len(open_):  # interrupted (Tune stops on Ctrl-C and returns): later rounds need it
            raise CompareError(
                f"{what} stopped with {len(open_)} of {len(rows)} trials unfinished; "
                "re-run the same command to resume (completed trials are kept)"
            )
        self.frames.append(rows)
        return pd.concat(self.frames, ignore_index=True).drop_duplicates("key", keep="last")


def study_early_stop(out_dir, requested: EarlyStop | None, epochs: int) -> EarlyStop:
    """The comparison's early stopping, validated and stored in its study's definition; a
    resume asking for another one is refused in one line (nothing is changed)."""

    store = StudyStore(out_dir)
    have = EarlyStop.from_dict(store.check().get("early_stop")) if store.exists() else None
    if requested is None:
        return have or EarlyStop()
    stop = checked(requested, epochs=epochs, sampler="random")
    if have is not None and have != stop:
        raise CompareError(
            f"--scheduler {stop.describe()} conflicts with the comparison in {str(out_dir)!r} "
            f"(stored: {have.describe()}); leave it out to resume, or use a new --out"
        )
    if have is None:
        StudyStore(prepare_dir(out_dir)).open({"source": "api", "early_stop": stop.to_dict()})
    return stop


def _timing(out_dir: Path, results, candidates: list, config, progress: bool) -> dict | None:
    """The one timing pass over every trained first-round model (trials.compare.timing_pass)."""

    if not epoch_images(config):  # an ImageFolder without --train-size: epochs unknown here
        return None
    done = set(results.loc[results["status"] == "done", "model"].astype(str))
    specs = {c.tags["model"]: c.spec for c in candidates if c.tags["model"] in done}
    from trials.compare.meta import read_meta  # pydantic

    old = read_meta(out_dir).get("timing")
    _say(progress, f"timing pass: {len(specs)} models, the same way for all (see the report)")
    return timing_pass(specs, config, old, progress=progress)


def _rounds(preset: Preset, shape, cand_a: list, config, study, progress: bool = True):
    """Rounds A, B and C in order; each one's candidates depend on the previous results.
    Returns the results and every first-round candidate."""
    work = planned_work(preset, len(dedupe(cand_a)), config)
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

    store = StudyStore(out_dir)
    if not store.exists():
        _refuse_foreign_files(Path(out_dir))
        return
    source = store.check().get("source")
    if source != "api":
        raise CompareError(
            f"{str(out_dir)!r} holds a study made by `fastscale study run` (candidates from "
            f"{source!r}); a comparison keeps its own study: pass a new or empty --out"
        )


def _refuse_foreign_files(out_dir: Path) -> None:
    """An existing directory with files but neither a study nor compare.json is someone
    else's output: refuse it before anything (Ray, data, a study) is started or written."""
    if not out_dir.is_dir() or (out_dir / META_FILE).exists():
        return
    names = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise CompareError(
            f"{str(out_dir)!r} exists and holds other files ({shown}) but no comparison; pass "
            "--out with a new or empty directory (default runs/compare-PRESET), or move those "
            "files away; to rebuild an existing comparison's report use `fastscale report DIR`"
        )


def _write_meta(
    out_dir: Path, preset: Preset, dataset: str, n, wall: float, keys: list, timing=None, stop=None
):
    """compare.json: the preset as run, the study keys this comparison consists of (a
    rebuilt report shows only these), every invocation's wall time (resumes append) and the
    early stopping the rounds ran with."""
    import os
    import platform

    from trials.compare.meta import read_meta  # pydantic

    path = out_dir / META_FILE
    old = read_meta(out_dir)
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
        "early_stop": (stop or EarlyStop()).to_dict(),
    }
    write_file(path, json.dumps(meta, indent=2, default=str))
    return meta


def stored_results(out_dir: str | Path):
    """(results, meta) of a comparison directory: its compare.json (empty if absent) and the
    results table of the comparison's own candidates."""

    from trials.compare.meta import read_meta  # pydantic

    meta = read_meta(out_dir)
    results = load_results(out_dir)
    if meta.get("keys"):
        results = results[results["key"].isin(meta["keys"])]
    return results, meta


def rebuild_report(out_dir: str | Path, epoch_time_check: dict | None = None) -> Path:
    """The report from stored results only (no training); `epoch_time_check` adds the
    section on a runtime profile's predictions (trials.compare.runtime_check)."""
    from trials.compare.report import build_report

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise CompareError(f"{str(out_dir)!r} is not a directory")
    results, meta = stored_results(out_dir)
    if len(results) == 0:
        raise CompareError(f"{str(out_dir)!r} holds no trial results")
    return build_report(results, out_dir, meta, epoch_time_check)


def study_epoch_time_check(out_dir: str | Path, profile: str) -> dict:
    """Predicted vs measured epoch time of a comparison's own models (runtime_check)."""
    results, meta = stored_results(out_dir)
    config = meta.get("config") or {}
    # each candidate trains at its own spec's resolution (a scaled one may be larger than the
    # preset's): no run-wide resolution here
    train = {**(config.get("train") or {}), "dataset": meta.get("dataset"), "resolution": None}
    return epoch_time_check(results, profile, train, meta.get("timing"))
