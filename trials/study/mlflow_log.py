"""Per-epoch metrics in MLflow, when `mlflow` is installed (`pip install fastscale[mlflow]`).

Beside the TensorBoard scalars (trials.study.metrics_log), and like them written by the
driver: one MLflow experiment per study (named by the study directory's absolute path), one
run per candidate (run name and tag `fastscale.key` = the candidate key), step = epoch,
metrics `val_error`, `train_loss`, `epoch_time`. A resumed candidate logs into its own run
again, so its curves continue across resumes. Tracking goes to $MLFLOW_TRACKING_URI when
set, else to an SQLite store in the study directory, `DIR/mlflow.db` (view with
`mlflow ui --backend-store-uri sqlite:///DIR/mlflow.db`). Not a `file:DIR/mlruns` store:
MLflow deprecated the filesystem backend in 2026 and refuses it from 3.13 on unless
MLFLOW_ALLOW_FILE_STORE=true; SQLite is its default now (SQLAlchemy comes with Optuna).

MLflow trouble (a server that went away, a full disk) never stops a study: the first error
is printed once on stderr and MLflow logging stops for that run of the driver.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from ray.tune import Callback

from trials.study.metrics_log import SCALARS

DATABASE = "mlflow.db"
ARTIFACTS = "mlruns"  # nothing is logged there; set so MLflow never writes into the cwd
KEY_TAG = "fastscale.key"


def available() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def tracking_uri(study_root: str | Path) -> str:
    """$MLFLOW_TRACKING_URI, else an SQLite store in the study directory."""
    default = f"sqlite:///{Path(study_root).resolve() / DATABASE}"
    return os.environ.get("MLFLOW_TRACKING_URI") or default


def callbacks(study_root: str | Path) -> list:
    """[MlflowLog] when mlflow is importable, else []."""
    return [MlflowLog(study_root)] if available() else []


class MlflowLog(Callback):
    """A Tune callback on the driver: every epoch result becomes MLflow metrics of the
    candidate's run."""

    def __init__(self, study_root: str | Path):
        self.root = Path(study_root).resolve()
        self.client = None
        self.experiment_id = None
        self.runs: dict[str, str] = {}  # candidate key -> MLflow run id
        self.broken = False

    def __getstate__(self):  # Tune may pickle callbacks; the client stays on this side
        return {"root": str(self.root)}

    def __setstate__(self, state):
        self.__init__(state["root"])

    def _run_id(self, key: str) -> str:
        if self.client is None:
            from mlflow.tracking import MlflowClient

            # MLflow announces at INFO on stderr that it creates and migrates a new SQLite
            # store's tables, and logs its store's errors with their tracebacks (a full
            # disk): this callback reports an MLflow failure itself, in one line (below)
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
            self.client = MlflowClient(tracking_uri=tracking_uri(self.root))
            name = str(self.root)
            found = self.client.get_experiment_by_name(name)
            self.experiment_id = found.experiment_id if found else self._create(name)
        if key not in self.runs:
            runs = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1
            )
            if runs:
                self.runs[key] = runs[0].info.run_id
            else:
                run = self.client.create_run(self.experiment_id, run_name=key, tags={KEY_TAG: key})
                self.runs[key] = run.info.run_id
        return self.runs[key]

    def _create(self, name: str) -> str:
        artifacts = (self.root / ARTIFACTS).as_uri()
        return self.client.create_experiment(name, artifact_location=artifacts)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        key = trial.config.get("key")
        if self.broken or not key or "epoch" not in result or "final" in result:
            return
        stamp, step = int(time.time() * 1000), int(result["epoch"])

        def log():
            from mlflow.entities import Metric

            metrics = [
                Metric(name, float(result[name]), stamp, step)
                for name in SCALARS
                if result.get(name) is not None
            ]
            run_id = self._run_id(key)  # opens the client on first use
            self.client.log_batch(run_id, metrics=metrics)

        self._guarded(log)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, "FAILED")

    def _end(self, trial, status: str) -> None:
        run_id = self.runs.get(trial.config.get("key"))
        if run_id and not self.broken:
            self._guarded(lambda: self.client.set_terminated(run_id, status=status))

    def _guarded(self, action) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - any MLflow/backend error: keep training
            self.broken = True
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"fastscale: MLflow logging stopped: {first[:200]}", file=sys.stderr)
