"""Per-epoch metrics where dashboards read them: TensorBoard event files in the study dir.

Written by the driver, which owns the study directory (trials only report through Tune):
`DIR/tensorboard/<candidate key>/`, one run per candidate, step = epoch, scalars
`val_error`, `train_loss`, `epoch_time`. A resumed candidate appends to its own run, so
its curve continues across resumes. View with `tensorboard --logdir DIR/tensorboard`.

Uses tensorboardX (a dependency of Ray Tune), so TensorBoard itself is needed only to view.
"""

from __future__ import annotations

from pathlib import Path

from ray.tune import Callback

SCALARS = ("val_error", "train_loss", "epoch_time")
SUBDIR = "tensorboard"


class MetricsLog(Callback):
    """A Tune callback on the driver: every epoch result of a trial becomes TensorBoard
    scalars under the trial's candidate key."""

    def __init__(self, study_root: str | Path):
        self.root = Path(study_root) / SUBDIR
        self.writers: dict = {}

    def __getstate__(self):  # Tune may pickle callbacks; open writers stay on this side
        return {"root": str(self.root)}

    def __setstate__(self, state):
        self.root, self.writers = Path(state["root"]), {}

    def _writer(self, key: str):
        if key not in self.writers:
            from tensorboardX import SummaryWriter

            self.writers[key] = SummaryWriter(logdir=str(self.root / key))
        return self.writers[key]

    def on_trial_result(self, iteration, trials, trial, result, **info):
        key = trial.config.get("key")
        if not key or "epoch" not in result or "final" in result:
            return
        writer = self._writer(key)
        for name in SCALARS:
            if result.get(name) is not None:
                writer.add_scalar(name, float(result[name]), int(result["epoch"]))
        writer.flush()

    def on_experiment_end(self, trials, **info):
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
