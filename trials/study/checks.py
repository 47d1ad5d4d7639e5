"""Checks a driver makes before it creates anything or starts Ray (one line each, exit 2).

Ordered cheapest first: resources per trial, the dataset, the checkpoint storage, the
cluster address (a TCP probe), and — once attached or before the embedded Ray starts — the
cluster's resources against one trial's.
"""

from __future__ import annotations

import math

from trials.data.catalogue import dataset_info
from trials.study.store import StudyError
from trials.training.parallel import ParallelConfig, check_parallel
from trials.training.recipe import TrainConfig, available_cpus


def check_trial_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Finite, positive CPUs and non-negative GPUs (NaN is never scheduled: it would hang)."""
    if not (math.isfinite(cpus_per_trial) and cpus_per_trial > 0):
        raise StudyError(f"--cpus-per-trial must be a number > 0, got {cpus_per_trial}")
    if not (math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
        raise StudyError(f"--gpus-per-trial must be a number >= 0, got {gpus_per_trial}")


# The trial process of a data-parallel trial only coordinates (its workers train): it takes
# a sliver of a CPU (Ray refuses a placement-group bundle of only zeros), so N workers of C
# CPUs need N*C + 0.01 CPUs: two one-CPU workers do not fit a 2-CPU machine (0.9 CPUs each do).
TRIAL_DRIVER_CPUS = 0.01
PARALLEL_DEFAULTS = {
    "workers_per_trial": 1,
    "cpus_per_worker": 1,
    "gpus_per_worker": 0,
    "placement": "PACK",
}


def check_split(train: dict, run: dict) -> None:
    """The study's recipe splits over --workers-per-trial (the batch divides, and so on)."""
    workers = int(run.get("workers_per_trial") or 1)
    if workers == 1:
        return
    par = ParallelConfig(
        workers=workers,
        cpus_per_worker=float(run["cpus_per_worker"]),
        gpus_per_worker=float(run["gpus_per_worker"]),
        placement=run["placement"],
    )
    device = "cuda" if par.gpus("cpu") > 0 else "cpu"
    check_parallel(TrainConfig.from_dict({**train, "device": device}), par)


def check_parallel_trial(run: dict) -> None:
    """--gpus-per-trial > 1 trains on one GPU only: point to --workers-per-trial."""
    workers = int(run.get("workers_per_trial") or 1)
    if workers == 1 and run["gpus_per_trial"] > 1:
        raise StudyError(
            f"--gpus-per-trial {run['gpus_per_trial']:g} would reserve GPUs a trial cannot use "
            "(one process trains on one GPU); use --workers-per-trial N --gpus-per-worker 1"
        )
    for name in ("cpus_per_worker", "gpus_per_worker"):
        value = float(run.get(name) or 0)
        if not math.isfinite(value) or value < 0 or (name == "cpus_per_worker" and value == 0):
            raise StudyError(f"--{name.replace('_', '-')} must be a number > 0, got {value}")


def trial_resources(run: dict) -> tuple[float, float]:
    """(CPUs, GPUs) one trial holds: --cpus/--gpus-per-trial, or its data-parallel workers'."""
    workers = int(run.get("workers_per_trial") or 1)
    if workers == 1:
        return float(run["cpus_per_trial"]), float(run["gpus_per_trial"])
    cpus = TRIAL_DRIVER_CPUS + workers * float(run.get("cpus_per_worker") or 1)
    return cpus, workers * float(run.get("gpus_per_worker") or 0)


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
