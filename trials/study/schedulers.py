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

from trials.study.early_stop import EarlyStop, judged


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
