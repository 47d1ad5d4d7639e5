"""Data-parallel training: N worker processes (Ray actors, one device each) under one driver.

Why our own actor group rather than Ray Train's `TorchTrainer`: Ray Train persists
checkpoints itself and requires shared storage (NFS or cloud) for multi-node runs (Ray
docs, "Configure persistent storage"), while fastscale's guarantees rest on the process
that calls `train()` being the only writer of the run directory, with no shared
filesystem (docs/training.md, docs/studies.md). So the workers run torch.distributed
(gloo on CPU, NCCL on CUDA) among themselves, and rank 0 hands its state and records to
the driver through Ray's object store after every epoch; the driver writes the checkpoint
and result.json exactly as a one-process run does, and the study trial reports it through
Tune as before. The workers sit in one placement group: bundles of `cpus_per_worker` CPUs
and `gpus_per_worker` GPUs, PACK (default) or SPREAD. Inside a Tune trial, the trial's own
placement group already holds the bundles (trials.study), and the workers take them.

`DistributedRun` offers the driver the interface of the one-process `_Run` of
trials.training.train (restore, train_epoch, validate, state), so checkpoints, resume,
kill drills and reports are one code path. The per-rank arithmetic is trials.training.rank.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from spaces.errors import FastscaleError
from trials import available_cpus
from trials.training.recipe import ConfigError, TrainConfig

MAX_DATA_WORKERS = 1024
PLACEMENTS = ("PACK", "SPREAD")
PLACE_TIMEOUT_S = 120  # a placement group not ready by then cannot be placed in practice
KILL_ENV = "FASTSCALE_WORKER_KILL"  # drill: "RANK:EPOCH" SIGKILLs that worker in that epoch


class WorkerLost(FastscaleError):
    """A data-parallel worker died (killed, out of memory, node lost); the run can resume."""


@dataclass(frozen=True)
class ParallelConfig:
    """How one run is spread over workers. `batch_size` of the TrainConfig stays global.

    workers: processes, one device each; sync_bn: BatchNorm statistics over the global batch;
    cpus_per_worker: CPUs reserved per worker (and its torch threads unless the recipe fixes
    threads); gpus_per_worker: None = 1 on CUDA, 0 on CPU; placement: PACK or SPREAD.
    """

    workers: int = 1
    sync_bn: bool = False
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    placement: str = "PACK"

    def gpus(self, device: str) -> float:
        if self.gpus_per_worker is not None:
            return float(self.gpus_per_worker)
        return 1.0 if device == "cuda" else 0.0

    def bundles(self, device: str) -> list[dict]:
        """One placement-group bundle per worker."""
        one = {"CPU": float(self.cpus_per_worker)}
        if self.gpus(device) > 0:
            one["GPU"] = self.gpus(device)
        return [dict(one) for _ in range(self.workers)]


def check_parallel(config: TrainConfig, par: ParallelConfig) -> None:
    """Refuse, in one line and before anything starts, a split that cannot work."""
    n = par.workers
    if not 1 <= n <= MAX_DATA_WORKERS:
        raise ConfigError(f"--workers must be in [1, {MAX_DATA_WORKERS}], got {n}")
    if config.batch_size % n:
        raise ConfigError(
            f"the global batch {config.batch_size} does not split evenly over {n} workers; "
            f"use a batch size divisible by {n}"
        )
    if config.batch_size // n < 2 and not par.sync_bn:
        raise ConfigError(
            f"each worker needs >= 2 images per step for BatchNorm; got {config.batch_size // n}"
        )
    if par.sync_bn and n == 1:
        raise ConfigError(
            "--sync-bn needs --workers >= 2 (one worker's BatchNorm is already global)"
        )
    if par.placement not in PLACEMENTS:
        raise ConfigError(
            f"placement must be one of {', '.join(PLACEMENTS)}, got {par.placement!r}"
        )
    if not par.cpus_per_worker > 0:
        raise ConfigError(f"--cpus-per-worker must be > 0, got {par.cpus_per_worker}")
    if config.device == "cuda" and par.gpus(config.device) <= 0:
        raise ConfigError("--device cuda needs --gpus-per-worker > 0")
    if config.train_size is not None and config.train_size < config.batch_size and n > 1:
        raise ConfigError(
            f"a data-parallel run needs at least one global batch of training images; "
            f"train_size {config.train_size} < batch {config.batch_size}"
        )


def check_fits_here(config: TrainConfig, par: ParallelConfig) -> None:
    """Refuse a run this machine (no Ray yet) or the connected cluster cannot place."""
    import ray

    need_cpu = par.workers * par.cpus_per_worker
    need_gpu = par.workers * par.gpus(config.device)
    if ray.is_initialized():
        res = ray.cluster_resources()
        have_cpu, have_gpu, where = res.get("CPU", 0), res.get("GPU", 0), "the Ray cluster has"
    else:
        import torch

        have_cpu, where = available_cpus(), "this machine has"
        have_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if need_gpu > have_gpu:
        raise ConfigError(
            f"{par.workers} workers need {need_gpu:g} GPUs; {where} {have_gpu:g}: lower "
            "--workers to fit, or train on --device cpu"
        )
    if need_cpu > have_cpu:
        raise ConfigError(
            f"{par.workers} workers x {par.cpus_per_worker:g} CPUs need {need_cpu:g} CPUs; "
            f"{where} {have_cpu:g}: lower --workers or --cpus-per-worker"
        )


def kill_drill(env: dict) -> tuple[int, int] | None:
    """(rank, epoch) from FASTSCALE_WORKER_KILL=RANK:EPOCH, else None."""
    text = env.get(KILL_ENV)
    if not text:
        return None
    rank, epoch = text.split(":")
    return int(rank), int(epoch)


class WorkerGroup:
    """N RankWorker actors in one placement group, joined into one process group."""

    def __init__(self, spec, config: TrainConfig, par: ParallelConfig, drill=None):
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from trials.training.rank import RankWorker

        self._started_ray = False
        if not ray.is_initialized():  # a plain `fastscale train --workers N`: a local Ray
            ray.init(
                address="local", num_cpus=available_cpus(), include_dashboard=False,
                log_to_driver=False, logging_level=logging.WARNING,
            )  # fmt: skip
            self._started_ray = True
        own = ray.util.get_current_placement_group()  # a study trial's, holding the bundles
        first = 1 if own is not None else 0  # bundle 0 of a trial's group is the trial's own
        if own is None:
            own = placement_group(par.bundles(config.device), strategy=par.placement)
            self._remove = lambda: remove_placement_group(own)
            ready, _ = ray.wait([own.ready()], timeout=PLACE_TIMEOUT_S)
            if not ready:
                self.close()
                raise ConfigError(
                    f"the cluster could not place {par.workers} workers "
                    f"({par.bundles(config.device)[0]} each, {par.placement}) "
                    f"within {PLACE_TIMEOUT_S}s"
                )
        else:
            self._remove = lambda: None
        cls = ray.remote(RankWorker)
        gpus = par.gpus(config.device)
        options = {"sync_bn": par.sync_bn}
        self.actors = []
        for rank in range(par.workers):
            kill = drill[1] if drill and drill[0] == rank else None
            strategy = PlacementGroupSchedulingStrategy(
                own, placement_group_bundle_index=first + rank
            )
            actor = cls.options(
                num_cpus=par.cpus_per_worker, num_gpus=gpus, scheduling_strategy=strategy,
                max_restarts=0,
            ).remote(rank, par.workers, spec.to_dict(), config.to_dict(), {**options, "kill_epoch": kill})  # fmt: skip
            self.actors.append(actor)
        host, port = ray.get(self.actors[0].address.remote())
        self.iters = self.call("setup", host, port)[0]
        self.nodes = self.call("node")  # rank order: where each worker runs

    def call(self, method: str, *args) -> list:
        """Every rank's result of `method(*args)`; a lost worker stops them all (WorkerLost)."""
        import ray

        pending = [getattr(a, method).remote(*args) for a in self.actors]
        waiting = list(pending)
        try:
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                ray.get(done[0])  # raises at the first failure, not after the slowest rank
        except ray.exceptions.RayActorError as exc:
            self.close()
            raise _lost(method, type(exc).__name__) from None
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)  # e.g. TrainingDiverged on a rank: as it is
            # a killed rank often shows first as a broken connection on a surviving one
            dead = _peer_died(waiting) or _broken_collective(cause)
            self.close()
            if dead:
                raise _lost(method, type(cause).__name__) from None
            raise (cause if isinstance(cause, Exception) else exc.as_instanceof_cause()) from None
        return ray.get(pending)

    def close(self) -> None:
        import ray

        for actor in getattr(self, "actors", []):
            ray.kill(actor, no_restart=True)
        self.actors = []
        self._remove()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


class DistributedRun:
    """The driver's handle on a data-parallel run (the interface of train._Run)."""

    def __init__(self, spec, config: TrainConfig, par: ParallelConfig, drill=None):
        self.group = WorkerGroup(spec, config, par, drill)
        self.iters, self.config, self.workers = self.group.iters, config, par.workers
        self.nodes = self.group.nodes
        self.step_losses: list[float] = []

    def restore(self, ckpt: dict) -> int:
        import ray

        ref = ray.put({k: ckpt[k] for k in ("model", "ema", "optimizer", "scaler", "epoch")})
        return int(self.group.call("restore", ref)[0])

    def state(self, key: dict, epoch: int, records: list[dict]) -> dict:
        return {"format": 1, "key": key, "epoch": epoch, **self.group.call("state")[0],
                "records": records}  # fmt: skip

    def train_epoch(self, epoch: int, on_step=None) -> tuple[float, int, float]:
        loss, seen, seconds, self.step_losses, self.peak = self.group.call("train_epoch", epoch)[0]
        if on_step is not None:
            on_step(epoch, seen, seen)
        return loss, seen, seconds

    def validate(self, epoch: int) -> tuple[float, float | None]:
        return tuple(self.group.call("validate", epoch)[0])

    def peak_memory(self) -> int:
        """Rank 0's peak bytes of the last epoch (every rank holds the same replica)."""
        return int(self.peak)

    def close(self) -> None:
        self.group.close()


def _lost(method: str, why: str) -> WorkerLost:
    return WorkerLost(
        f"a data-parallel worker died during {method} ({why}); "
        "rerun the same command to resume from the last checkpoint"
    )


def _peer_died(refs, timeout_s: float = 10.0) -> bool:
    """Whether another rank's call ended because its worker died (waits a little: the
    surviving ranks' collective fails at once, the dead one's actor error comes later)."""
    import ray

    for ref in refs:
        try:
            ray.get(ref, timeout=timeout_s)
        except ray.exceptions.RayActorError:
            return True
        except Exception:  # noqa: BLE001 - its own failure, or still running: not a death
            continue
    return False


def _broken_collective(cause) -> bool:
    """A collective that failed because a peer went away (gloo/NCCL connection errors)."""
    text = str(cause)
    return isinstance(cause, RuntimeError) and any(
        s in text
        for s in (
            "Connection reset by peer",
            "Connection closed by peer",
            "NCCL communicator was aborted",
        )
    )
