"""The Ray Tune side of the runner: a Searcher fed by our proposer, and two callbacks.

Module-level classes (Tune pickles its config; these never travel: __getstate__ is empty,
since everything they know lives in the study store).
"""

from __future__ import annotations

from ray.tune import Callback
from ray.tune.search import Searcher

from trials.study.progress import short_name
from trials.study.runner import FINISHED, settle


class StudySearcher(Searcher):
    """Feeds Tune the next candidate key; records crashes and decides retries."""

    def __init__(self, store, proposer, static: dict, view):
        super().__init__()
        self.store, self.proposer, self.static, self.view = store, proposer, static, view
        self.live: dict[str, tuple[str, int]] = {}

    def __getstate__(self):
        return {}

    def set_search_properties(self, metric, mode, config, **spec):
        return True

    def save(self, checkpoint_path):  # our state lives in the study store
        pass

    def suggest(self, trial_id):
        key = self.proposer.next()
        if key == FINISHED:
            return Searcher.FINISHED
        if key is None:
            return None
        attempts = self.store.status(key)["attempts"]
        self.live[trial_id] = (key, attempts)
        self.view.start(key, short_name(self.store.candidate(key)["spec"]), attempts + 1)
        return {**self.static, "key": key}

    def on_trial_complete(self, trial_id, result=None, error=False):
        key, before = self.live.pop(trial_id, (None, 0))
        if key is None:
            return
        rec = settle(self.store, key, before, result, error)
        final = self.store.is_finished(key, self.proposer.max_failures)
        self.view.finish(key, short_name(self.store.candidate(key)["spec"]), rec, final)
        self.proposer.done(key, rec)


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


class EpochView(Callback):
    """Per-epoch results of running trials to the live view."""

    def __init__(self, view):
        self.view = view

    def __getstate__(self):
        return {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" in result and "final" not in result:
            self.view.epoch(trial.config.get("key"), result)
