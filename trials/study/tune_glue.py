"""The Ray Tune side of the runner: a Searcher fed by our proposer, and two callbacks.

Module-level classes (Tune pickles its config; these never travel: __getstate__ is empty,
since everything they know lives in the study store). They run in the driver only; every
record they write goes through trials.study.records.
"""

from __future__ import annotations

from ray.tune import Callback
from ray.tune.search import Searcher

from trials.study import records
from trials.study.checkpoint_storage import join
from trials.study.live_view import short_name
from trials.study.proposers import FINISHED
from trials.study.store import canonical


class StudySearcher(Searcher):
    """Feeds Tune the next candidate (its whole config); records ends and decides retries."""

    def __init__(self, store, proposer, static: dict, view, experiment: str, stops=None):
        super().__init__()
        self.store, self.proposer, self.static, self.view = store, proposer, static, view
        self.experiment = experiment  # storage location of this run's Tune experiment
        self.live: dict[str, str] = {}
        # the scheduler's record of whom it stopped (trial id -> its name; early_stop)
        self.stops = stops if stops is not None else {}
        # an OSError (a full disk) while settling a trial: Tune's stop handler would log its
        # traceback and go on, so it is raised from the next suggest() instead, out of
        # Tune, where the driver reports it in one line
        self.failure: OSError | None = None

    def __getstate__(self):
        return {}

    def set_search_properties(self, metric, mode, config, **spec):
        return True

    def save(self, checkpoint_path):  # our state lives in the study store
        pass

    def suggest(self, trial_id):
        if self.failure is not None:
            raise self.failure
        key = self.proposer.next()
        if key == FINISHED:
            return Searcher.FINISHED
        if key is None:
            return None
        cand = self.store.candidate(key)
        resume = records.resume_point(self.store.status(key))
        rec = records.begin(self.store, key, join(self.experiment, trial_dirname(key, trial_id)))
        self.live[trial_id] = key
        self.view.start(key, short_name(cand["spec"]), rec["attempts"])
        candidate = canonical({"spec": cand["spec"], "train": cand["train"]})
        return {
            **self.static,
            "key": key,
            "candidate": candidate,
            "attempt": rec["attempts"],
            "resume": resume,
        }

    def on_trial_complete(self, trial_id, result=None, error=False):
        key = self.live.pop(trial_id, None)
        if key is None:
            return
        stopped_by = self.stops.pop(trial_id, None)
        try:
            rec = records.settle(self.store, key, result, error, stopped_by)
        except OSError as exc:  # recover() settles it on the rerun, from the storage
            self.failure = exc
            return
        final = self.store.is_finished(key, self.proposer.max_failures)
        self.view.finish(key, short_name(self.store.candidate(key)["spec"]), rec, final)
        self.proposer.done(key, rec)


def trial_dirname(key: str, trial_id: str) -> str:
    """The trial's directory in the storage (Tune's trial_dirname_creator uses this too)."""
    return f"{key}-{trial_id}"


class EpochResults(Callback):
    """Where per-epoch results arrive in the driver: the record, then the live view.

    Tune calls on_trial_result for every report (also for the one a scheduler stops on);
    the final report (`final` in the result) is settled by StudySearcher.on_trial_complete.
    """

    def __init__(self, store, view):
        self.store, self.view = store, view

    def __getstate__(self):
        return {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result or result.get("final"):
            return
        key = trial.config.get("key")
        records.epoch(self.store, key, result)
        self.view.epoch(key, result)


class ErrorDetail(Callback):
    """Replace the generic crash message with Tune's error text for that trial."""

    def __init__(self, store):
        self.store = store

    def __getstate__(self):
        return {}

    def on_trial_error(self, iteration, trials, trial, **info):
        key = trial.config.get("key")
        try:
            text = trial.get_error()
        except Exception:
            text = None
        rec = self.store.status(key) if key else None
        if text and rec and "trial process died" in str(rec.get("failure")):
            lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
            if lines:
                rec["failure"] = f"trial process died: {lines[-1][:240]}"
                self.store.write_status(key, rec)
