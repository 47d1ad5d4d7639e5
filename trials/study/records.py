"""The driver's side of the trial protocol: it alone writes the study store.

A candidate's record (`status.json`) moves through

    begin   (a trial is handed to Tune)  -> running, attempts + 1, `trial` = its storage dir
    epoch   (each per-epoch result)      -> epochs_done, last_val_error, `checkpoint`
    settle  (the trial ended)            -> done | failed, from the trial's final report;
                                            stopped, from the last epoch's result, when a
                                            scheduler or pruner stopped it (early_stop)
    recover (a resume after a kill)      -> whatever the storage holds for a `running` one

`epoch` is the one place where per-epoch results arrive in the driver (schedulers, loggers
and progress views hang off StudySearcher.on_trial_result, which calls it).

Every write is atomic (StudyStore.write_status), so a kill leaves the old record or the new
one. A trial's checkpoints (and its final record) reach the checkpoint storage before the
driver hears of them, so a record that says less than the storage is brought up to date by
`recover`; nothing the trial finished is trained again.
"""

from __future__ import annotations

import collections
import json
import os
import signal

from trials.study import checkpoint_storage
from trials.study.damage import usable_keys
from trials.study.early_stop import label
from trials.study.store import StudyStore, now

# Drills and tests: FASTSCALE_STUDY_KILL="EVENT:N" makes the driver SIGKILL itself when the
# N-th result of that kind arrives, before recording it (EVENT: epoch or final), so a kill
# can land exactly between a trial persisting its checkpoint and the driver's record.
KILL_ENV = "FASTSCALE_STUDY_KILL"
_events: collections.Counter = collections.Counter()


def kill_point(event: str) -> None:
    spec = os.environ.get(KILL_ENV, "")
    name, _, count = spec.partition(":")
    if name != event:
        return
    _events[event] += 1
    if _events[event] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# Fields a trial's record contributes to the candidate's record (the driver keeps
# attempts/failures/trial/checkpoint itself).
RESULT_FIELDS = (
    "error",
    "best_epoch",
    "final_error",
    "flops",
    "params",
    "acts",
    "epoch_time",
    "images_per_s",
    "infer_time",
    "epochs_done",
    "resumed_at_epoch",
    "train_s",
    "wall_s",
    "hostname",
    "node",
    "pid",
    "threads",
    "workers",
    "worker_nodes",
    "started",
    "finished",
    "failure",
    "last_val_error",
)


def begin(store: StudyStore, key: str, trial_location: str) -> dict:
    """Record that a new attempt starts in `trial_location`; returns the record."""
    rec = store.status(key)
    rec = {
        **rec,
        "status": "running",
        "attempts": int(rec["attempts"]) + 1,
        "trial": trial_location,
        "started": now(),
    }
    store.write_status(key, rec)
    store.log(key, f"attempt {rec['attempts']} starts ({trial_location})")
    return rec


def resume_point(rec: dict) -> str | None:
    """The checkpoint a new attempt should continue from, if it is still there."""
    location = rec.get("checkpoint")
    if location and checkpoint_storage.state_complete(
        location, checkpoint_storage.read_record(location)
    ):
        return location
    return None


def epoch(store: StudyStore, key: str, result: dict) -> dict | None:
    """A per-epoch result of a running attempt: its progress and newest checkpoint."""
    kill_point("epoch")
    rec = store.status(key)
    if rec["status"] != "running" or not rec.get("trial"):
        return None
    rec["epochs_done"] = int(result.get("epoch", rec.get("epochs_done", 0)))
    rec["last_val_error"] = result.get("val_error")
    if result.get("checkpoint_dir_name"):
        rec["checkpoint"] = checkpoint_storage.join(rec["trial"], result["checkpoint_dir_name"])
    store.write_status(key, rec)
    store.log(key, "epoch " + str(result.get("epoch_record") or result.get("epoch")))
    return rec


def settle(
    store: StudyStore, key: str, result: dict | None, error: bool, stopped_by: str | None = None
) -> dict:
    """Make the record final for an attempt that ended: the trial's own, a stop by the
    scheduler (`stopped_by`: which one), or a crash."""
    rec = store.status(key)
    if rec["status"] != "running":
        return rec  # already settled (recover, or a duplicate event)
    reported = (result or {}).get("record")
    if stopped_by and not reported and not error and "epoch" in (result or {}):
        return _stop(store, key, rec, result, stopped_by)
    if reported:
        kill_point("final")
        trial = json.loads(reported)
        checkpoint = None
        if result.get("checkpoint_dir_name") and rec.get("trial"):
            checkpoint = checkpoint_storage.join(rec["trial"], result["checkpoint_dir_name"])
        if result.get("traceback"):
            store.log(key, f"attempt {rec['attempts']} failed:\n{result['traceback']}")
        return _finish(store, key, rec, trial, checkpoint, resumable=result.get("resumable"))
    why = "trial process died" if error else "trial ended without a record"
    return store.record_crash(key, f"{why} (worker killed, out of memory or node lost)")


def _stop(store: StudyStore, key: str, rec: dict, result: dict, stopped_by: str) -> dict:
    """Final record of an attempt stopped after an epoch: that epoch's validation error is
    its error (not a fully trained one); its resumable state is no longer needed."""

    epoch = int(result["epoch"])
    rec = {
        **rec,
        "status": "stopped",
        "stopped_by": stopped_by,
        "epochs_done": epoch,
        "error": result.get("val_error"),
        "last_val_error": result.get("val_error"),
        "epoch_time": result.get("epoch_time"),
        "failure": None,
        "finished": now(),
    }
    stale = {rec.get("checkpoint")}
    if result.get("checkpoint_dir_name") and rec.get("trial"):
        stale.add(checkpoint_storage.join(rec["trial"], result["checkpoint_dir_name"]))
    for location in filter(None, stale):
        checkpoint_storage.delete(location)
    rec["checkpoint"] = None
    store.write_status(key, rec)
    store.log(
        key,
        f"attempt {rec['attempts']} stopped early by {label(stopped_by)} after epoch {epoch}: "
        f"val error {rec['error']}",
    )
    return rec


def _finish(store, key, rec, trial: dict, checkpoint, resumable=None) -> dict:
    """Merge a trial's final record (done or failed) into the candidate's record."""
    rec = {**rec, **{k: trial[k] for k in RESULT_FIELDS if k in trial}, "status": trial["status"]}
    if trial["status"] == "done":
        rec["failure"] = None
        previous = rec.get("checkpoint")
        rec["checkpoint"] = (
            checkpoint
            if checkpoint and checkpoint_storage.has_file(checkpoint, checkpoint_storage.WEIGHTS)
            else None
        )
        store.write_status(key, rec)
        store.log(key, f"attempt {rec['attempts']} done: error {rec.get('error')}")
        _drop_older(previous, rec["checkpoint"], rec.get("trial"))
        return rec
    rec["failures"] = int(rec.get("failures", 0)) + 1
    if checkpoint and (
        resumable or checkpoint_storage.has_file(checkpoint, checkpoint_storage.STATE)
    ):
        rec["checkpoint"] = checkpoint
    store.write_status(key, rec)
    store.log(key, f"attempt {rec['attempts']} failed: {rec.get('failure')}")
    return rec


def _drop_older(previous: str | None, kept: str | None, trial: str | None) -> None:
    """A finished candidate needs none of its resumable states (Tune keeps one per trial;
    an earlier attempt's lives in another trial directory)."""
    if previous and previous != kept and not (trial and previous.startswith(trial)):
        checkpoint_storage.delete(previous)


def recover(store: StudyStore) -> list[str]:
    """Bring `running` records (their driver died) up to date from the checkpoint checkpoint_storage.

    The newest checkpoint of the attempt's trial directory holds the trial's own record: a
    final one (done/failed) settles the attempt as if its report had arrived; a running one
    moves `checkpoint` forward so the next attempt resumes there. Returns the keys changed.
    """

    changed = []
    for key in usable_keys(store, store.keys(), warn=lambda line: None):
        rec = store.status(key)
        if rec["status"] != "running":
            continue
        found = _newest(rec.get("trial"))
        if found is None:
            rec = {**rec, "status": "pending", "interrupted": now()}
            store.write_status(key, rec)
            store.log(key, f"attempt {rec['attempts']} interrupted (driver stopped)")
            changed.append(key)
            continue
        location, trial = found
        if trial.get("status") in ("done", "failed"):
            store.log(key, f"attempt {rec['attempts']} recovered from {location}")
            _finish(store, key, rec, trial, location)
        else:
            rec = {**rec, "status": "pending", "interrupted": now(), "checkpoint": location}
            rec["epochs_done"] = int(trial.get("epochs_done", rec.get("epochs_done", 0)))
            store.write_status(key, rec)
            store.log(
                key,
                f"attempt {rec['attempts']} interrupted after epoch {rec['epochs_done']} "
                f"(driver stopped); resumes from {location}",
            )
        changed.append(key)
    return changed


def _newest(trial_location: str | None) -> tuple[str, dict] | None:
    """(location, record) of the newest usable checkpoint of a trial directory: a final
    record (done/failed), or a running one whose resumable state arrived whole."""
    if not trial_location:
        return None
    for location in reversed(checkpoint_storage.checkpoints(trial_location)):
        rec = checkpoint_storage.read_record(location)
        final = rec is not None and rec.get("status") in ("done", "failed")
        if final or checkpoint_storage.state_complete(location, rec):
            return location, rec
    return None
