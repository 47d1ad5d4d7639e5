"""The results table: one row per candidate, derived from the per-candidate records.

`results.parquet` is a cache for other tools (pandas, optuna-dashboard users, reports); the
per-candidate files stay the source of truth, so the table is rebuilt after every run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from spaces.complexity import complexity
from spaces.safe_write import OutputError, open_for_write
from spaces.specs import spec_from_dict
from trials.data.catalogue import trained_spec as on_dataset
from trials.study import checkpoint_storage
from trials.study.damage import usable_keys
from trials.study.store import StudyStore

# Result columns, in display order; spec fields and tags follow.
COLUMNS = (
    "key",
    "status",
    "error",
    "flops",
    "params",
    "acts",
    "epoch_time",
    "infer_time",
    "attempts",
    "failures",
    "epochs_done",
    "epochs",
    "stopped_by",
    "node",
    "hostname",
    "seed",
    "failure",
)


def trained_spec(spec, train: dict):
    """The spec as the trial trains it (trials.data.datasets.trained_spec with its train config)."""

    return on_dataset(spec, train.get("dataset") or "fashion-mnist", train.get("resolution"))


def candidate_row(store: StudyStore, key: str, tags: dict | None = None) -> dict:
    cand = store.candidate(key)
    rec = store.status(key)
    train = cand["train"]
    row = {c: None for c in COLUMNS}
    row.update(
        key=key,
        status=rec["status"],
        attempts=int(rec.get("attempts", 0)),
        failures=int(rec.get("failures", 0)),
        epochs_done=int(rec.get("epochs_done", 0)),
        epochs=train.get("epochs"),
        seed=train.get("seed"),
    )
    # a `stopped` candidate's error is its validation error at epoch `epochs_done`, not a
    # fully trained one (trials.study.early_stop); `stopped_by` says what stopped it
    for name in ("error", "epoch_time", "infer_time", "node", "hostname", "failure", "stopped_by"):
        row[name] = rec.get(name)
    if rec["status"] == "done" and rec.get("flops") is not None:
        row.update(flops=rec["flops"], params=rec["params"], acts=rec["acts"])
    else:  # not trained yet: the analytic count of the model as it will be trained
        with contextlib.suppress(Exception):
            spec = trained_spec(spec_from_dict(dict(cand["spec"])), train)
            row.update(complexity(spec).as_dict())
    for name, value in cand["spec"].items():
        row.setdefault(name, value)
    if tags is None:
        sets = store.tag_sets(key)
        tags = sets[0] if sets else {}
    for name, value in tags.items():
        row[name if name not in row else f"tag_{name}"] = value
    return row


def rows_frame(rows: list[dict]):
    import pandas as pd

    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    for col in ("flops", "params", "acts", "attempts", "failures", "epochs_done"):
        if col in df and df[col].notna().all():
            df[col] = df[col].astype("int64")
    return df


def load_results(out_dir: str | Path):
    """One row per candidate of the study in `out_dir` (see COLUMNS, spec fields, tags)."""

    store = StudyStore(out_dir)
    store.check()
    rows = [candidate_row(store, k) for k in usable_keys(store, store.keys())]
    if any(r["status"] == "running" for r in rows) and not store.driver_running():
        for r in rows:  # its driver is gone (killed, disk full): it resumes on the next run
            if r["status"] == "running":
                r["status"] = "pending"
    return rows_frame(rows)


def by_error(df):
    """The results best first, with a `best` column: fully trained candidates (done) by
    error, then those stopped early (their error is at the epoch they stopped, so not
    comparable), then failed, running and pending ones; ties and the rest in key order.
    `best` is True on the done candidate with the lowest error (none when nothing is done)."""
    group = df["status"].map({"done": 0, "stopped": 1}).fillna(2)
    error = df["error"].astype(float)
    ranked = (
        df.assign(_group=group, _error=error)
        .sort_values(["_group", "_error", "key"], kind="mergesort", na_position="last")
        .drop(columns=["_group", "_error"])
        .reset_index(drop=True)
    )
    done = (ranked["status"] == "done") & ranked["error"].notna()
    ranked["best"] = False
    if done.any():
        ranked.loc[ranked[done]["error"].astype(float).idxmin(), "best"] = True
    return ranked


def write_results(store: StudyStore) -> Path:
    """Rebuild results.parquet (results.csv if parquet cannot hold the columns), atomically,
    with the project's one safe-write rule (docs/outputs.md)."""
    df = load_results(store.root)
    path = store.root / "results.parquet"
    try:
        with open_for_write(path) as fh:
            df.to_parquet(fh, index=False)
    except OutputError:  # the disk or the directory, not the table: nothing to fall back to
        raise
    except Exception:  # mixed-type columns pyarrow refuses: keep a CSV instead
        path = store.root / "results.csv"
        with open_for_write(path, text=True) as fh:
            df.to_csv(fh, index=False)
    return path


def study_size(store: StudyStore) -> tuple[int, int]:
    """(bytes in the study directory, bytes of its trials' checkpoints stored elsewhere)."""

    inside = 0
    for dirpath, _, files in os.walk(store.root):
        for name in files:
            with contextlib.suppress(OSError):
                inside += os.lstat(os.path.join(dirpath, name)).st_size
    outside, seen = 0, set()
    for key in store.keys():
        with contextlib.suppress(Exception):
            trial = store.status(key).get("trial")
            if trial and trial not in seen and not trial.startswith(str(store.root) + os.sep):
                seen.add(trial)
                outside += checkpoint_storage.size_bytes(trial)
    return inside, outside
