"""The Tune schedulers of early stopping (settings in trials.study.early_stop).

Module-level classes (Tune pickles its config): ASHA on the epochs' validation error, and a
FIFO scheduler that asks the study's Optuna pruner. Both note whom they stopped
(`stopped`: Tune trial id -> name) so the driver settles those trials as `stopped`, not
as crashes (trials.study.tune_glue.StudySearcher).
"""

from __future__ import annotations

import math
import warnings

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from trials.study.early_stop import SCHEDULERS, EarlyStop, judged
from trials.study.store import StudyError


class StudyASHA(ASHAScheduler):
    """ASHA with time = epoch, metric = val_error (min); never stops at the last epoch."""

    def __init__(self, stop: EarlyStop, epochs: float):
        super().__init__(
            time_attr="epoch",
            metric="val_error",
            mode="min",
            max_t=math.ceil(epochs),
            grace_period=stop.grace,
            reduction_factor=stop.reduction,
            stop_last_trials=False,
        )
        self.epochs = epochs
        self.stopped: dict[str, str] = {}

    def on_trial_result(self, tune_controller, trial, result):
        if not judged(result, self.epochs):
            return TrialScheduler.CONTINUE
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            self.stopped[trial.trial_id] = "asha"
        return decision


class OptunaPruning(FIFOScheduler):
    """Reports each epoch's validation error to the candidate's Optuna trial(s) and stops
    the Tune trial when the study's pruner says so (the proposer then tells PRUNED)."""

    def __init__(self, proposer, epochs: float, name: str):
        super().__init__()
        self.proposer, self.epochs, self.name = proposer, epochs, name
        self.stopped: dict[str, str] = {}

    def __getstate__(self):  # Tune pickles its config; the Optuna study stays here
        return {}

    def on_trial_result(self, tune_controller, trial, result):
        if not judged(result, self.epochs):
            return TrialScheduler.CONTINUE
        trials = self.proposer.optuna_trials(trial.config.get("key"))
        if not trials:
            return TrialScheduler.CONTINUE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a resumed attempt repeats reported steps
            for optuna_trial in trials:
                optuna_trial.report(float(result["val_error"]), int(result["epoch"]))
        if trials[0].should_prune():
            self.stopped[trial.trial_id] = self.name
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


def tune_scheduler(stop: EarlyStop, epochs: float, proposer=None):
    """The Tune scheduler for a run: None (FIFO), StudyASHA, or OptunaPruning over the
    proposer's Optuna trials (an Optuna pruner runs inside a FIFO Tune scheduler)."""
    if not stop.active:
        return None
    if stop.scheduler != "fifo":
        return SCHEDULER_CLASSES[stop.scheduler](stop, epochs)
    if proposer is None or not hasattr(proposer, "optuna_trials"):
        raise StudyError(f"--pruner {stop.pruner} needs an Optuna-sampled study")
    return OptunaPruning(proposer, epochs, stop.pruner)


# The one table of Tune schedulers: --scheduler name -> class (fifo: Tune's default, None).
SCHEDULER_CLASSES = {"fifo": None, "asha": StudyASHA}
assert tuple(SCHEDULER_CLASSES) == SCHEDULERS, "every --scheduler name has its class here"
