"""Checks a driver makes before it creates anything or starts Ray (one line each, exit 2).

Ordered cheapest first: resources per trial, the dataset, the checkpoint storage, the
cluster address (a TCP probe), and — once attached or before the embedded Ray starts — the
cluster's resources against one trial's.
"""

from __future__ import annotations

import math

from trials.data.catalogue import dataset_info
from trials.study.store import StudyError
from trials.training.recipe import available_cpus


def check_trial_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Finite, positive CPUs and non-negative GPUs (NaN is never scheduled: it would hang)."""
    if not (math.isfinite(cpus_per_trial) and cpus_per_trial > 0):
        raise StudyError(f"--cpus-per-trial must be a number > 0, got {cpus_per_trial}")
    if not (math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
        raise StudyError(f"--gpus-per-trial must be a number >= 0, got {gpus_per_trial}")


def local_resources(with_gpus: bool = True) -> tuple[float, float]:
    """(CPUs, GPUs) an embedded Ray on this machine would offer (GPUs counted only when
    asked: it imports torch)."""

    gpus = 0
    if not with_gpus:
        return float(available_cpus()), 0.0
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        gpus = 0
    return float(available_cpus()), float(gpus)


def check_fits(cpus_per_trial: float, gpus_per_trial: float, cpus: float, gpus: float) -> int:
    """How many trials fit at once; refused when not even one does."""
    if cpus_per_trial > cpus or gpus_per_trial > gpus:
        raise StudyError(
            f"a trial needs {cpus_per_trial:g} CPU and {gpus_per_trial:g} GPU but the cluster "
            f"has {cpus:g} CPU and {gpus:g} GPU in all"
        )
    n = int(cpus // cpus_per_trial) if cpus_per_trial > 0 else 10**6
    if gpus_per_trial > 0:
        n = min(n, int(round(gpus / gpus_per_trial, 6)))
    return max(1, n)


def check_dataset(train: dict) -> None:
    """The study's dataset is where the driver can read it (trials.data.datasets's catalogue; on a
    cluster the nodes need the same path, and this check catches typos before any trial)."""

    dataset_info(str(train.get("dataset") or "fashion-mnist"), check=True)
