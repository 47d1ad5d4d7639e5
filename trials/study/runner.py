"""Run a study's candidates as Ray Tune trials, driven by our own record.

Each `execute` is a fresh Tune experiment in the checkpoint storage: a custom Searcher hands
Tune the next candidate to run (a pending one, an interrupted one, a failed one with attempts
left, or a new Optuna suggestion) with everything its trial needs, and hears when it ends.
Tune's experiment restore is never used (ray-project/ray#16891, #30950, #40652): our record
says what to run, and an interrupted attempt's newest checkpoint is found through it
(trials.study.records).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from spaces.io import first_line
from trials.study.checkpoint_storage import join, storage_location
from trials.study.checks import (
    TRIAL_DRIVER_CPUS,
    check_fits,
    check_trial_resources,
    local_resources,
    trial_resources,
)
from trials.study.damage import usable_keys
from trials.study.early_stop import checked
from trials.study.live_view import StudyView
from trials.study.proposers import KeyProposer
from trials.study.records import recover
from trials.study.results import candidate_row, rows_frame, write_results
from trials.study.store import Candidate, StudyError, StudyStore
from trials.study.trainable import FAULT_ENV, study_trial
from trials.training.recipe import available_cpus

PROBE_TIMEOUT_S = 3.0


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) to probe for 'HOST:PORT', 'ray://HOST:PORT', 'http://HOST:PORT'."""
    if address in ("auto", "local"):
        return None
    allowed = "HOST:PORT, [IPv6]:PORT, ray://HOST:PORT or http://HOST:PORT"
    shown = address if len(address) <= 80 else address[:77] + "..."
    if len(address) > 1024:
        raise StudyError(f"--address {shown!r} is {len(address)} characters; use {allowed}")
    hostpart = address.split("://", 1)[-1].split("/", 1)[0]
    if hostpart.count(":") > 1 and not hostpart.startswith("["):
        raise StudyError(f"--address {shown!r}: an IPv6 address needs brackets, e.g. [::1]:6379")
    try:
        parsed = urlparse(address if "://" in address else f"tcp://{address}")
        host = parsed.hostname
        port = parsed.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise StudyError(f"--address {shown!r} is not {allowed}: {exc}") from None
    if not host or parsed.scheme not in ("tcp", "ray", "http", "https"):
        raise StudyError(f"--address {shown!r} is not {allowed}")
    default = {"tcp": 6379, "ray": 10001, "http": 80, "https": 443}[parsed.scheme]
    return host, port or default


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail in seconds, with one line, when nothing listens at the cluster address."""
    target = parse_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise StudyError(
            f"cannot reach Ray cluster at {address} ({target[0]}:{target[1]}: {reason})"
        ) from None


def connect(address: str | None) -> bool:
    """Attach to `address`, or start an embedded local Ray. True if we started/attached.

    Ray's authentication is left as the cluster and the user's environment have it.
    """
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        probe(address)

    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(address="local", num_cpus=available_cpus(), **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, version mismatch...
        first = first_line(exc)
        raise StudyError(f"cannot start or attach to Ray ({address or 'local'}): {first}") from None
    sigterm_as_interrupt()
    return True


@contextlib.contextmanager
def ray_session(address: str | None, cpus_per_trial: float, gpus_per_trial: float):
    """Ray for a study: the one already connected, a cluster to attach to, or an embedded one
    (started only once a trial is known to fit this machine). Yields how many trials fit at
    once; stops what it started."""
    import ray

    check_trial_resources(cpus_per_trial, gpus_per_trial)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized() and not address:
        check_fits(cpus_per_trial, gpus_per_trial, *local_resources(gpus_per_trial > 0))
    started = connect(address)
    try:
        yield concurrency(cpus_per_trial, gpus_per_trial)
    finally:
        if started:
            ray.shutdown()


def sigterm_as_interrupt() -> None:
    """Make SIGTERM stop the driver the way Ctrl-C does: Tune stops, completed work is kept,
    one line and exit 130. Without this, the handler `ray.init` installs prints a C++ stack
    dump and aborts (exit 134); a Python handler set after `ray.init` replaces it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)


def concurrency(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials fit at once in the cluster's resources (Tune queues the rest)."""
    import ray

    res = ray.cluster_resources()
    return check_fits(
        cpus_per_trial, gpus_per_trial, float(res.get("CPU", 0)), float(res.get("GPU", 0))
    )


def execute(
    store: StudyStore,
    proposer,
    *,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    address: str | None = None,
    progress: bool = True,
    time_batch: int | None = None,
    checkpoint_storage: str | None = None,
    keep_weights: bool = False,
    callbacks: tuple = (),
    scheduler=None,
    max_concurrent: int | None = None,
    workers_per_trial: int = 1,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    placement: str = "PACK",
) -> None:
    """Run the proposer's candidates to the end on Ray Tune; the caller holds the lock.

    `checkpoint_storage`: Tune's storage_path (docs/studies.md), default <study>/ray.
    `callbacks`, `scheduler`: extra Tune callbacks (per-epoch results reach them as Tune
    results) and a trial scheduler (trials.study.early_stop), passed to Tune as they are.
    `max_concurrent`: at most this many trials at once (default: as many as fit).
    `workers_per_trial` > 1: every trial is a data-parallel run of that many workers
    (`cpus_per_worker`, `gpus_per_worker` each) in one placement group (`placement`).
    """
    parallel = {
        "workers_per_trial": workers_per_trial,
        "cpus_per_worker": cpus_per_worker,
        "gpus_per_worker": gpus_per_worker,
        "placement": placement,
    }
    cpus_per_trial, gpus_per_trial = trial_resources(
        {"cpus_per_trial": cpus_per_trial, "gpus_per_trial": gpus_per_trial, **parallel}
    )
    static = {
        "parallel": parallel if workers_per_trial > 1 else None,
        "cpus": cpus_per_trial,
        "gpus": gpus_per_trial,
        "time_batch": time_batch,
        "faults": os.environ.get(FAULT_ENV),
        "keep_weights": keep_weights,
    }
    location = storage_location(checkpoint_storage, store.root)
    with _legacy_output(), ray_session(address, cpus_per_trial, gpus_per_trial) as limit:
        limit = min(limit, max_concurrent or limit)
        view = StudyView(proposer.total, proposer.finished_count(), enabled=progress)
        tuner = _tuner(store, proposer, view, static, location, limit, callbacks, scheduler)
        tune_logger = logging.getLogger("ray.tune")
        level = tune_logger.level
        tune_logger.setLevel(logging.CRITICAL)  # our view and records say what failed
        try:
            tuner.fit()
        finally:
            tune_logger.setLevel(level)
            view.close()
        if proposer.has_work() or proposer.active:  # Tune stopped early: Ctrl-C / SIGTERM
            raise KeyboardInterrupt("study interrupted; rerun the same command to resume")


def _tuner(store, proposer, view, static, location, limit, callbacks, scheduler):
    """One fresh Tune experiment in the checkpoint storage, fed by our searcher."""
    from ray import tune

    from trials.study import mlflow_log
    from trials.study.metrics_log import MetricsLog
    from trials.study.tune_glue import EpochResults, ErrorDetail, StudySearcher, trial_dirname

    name = time.strftime("run-%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    stops = getattr(scheduler, "stopped", None)  # whom an early-stopping scheduler stopped
    searcher = StudySearcher(store, proposer, static, view, join(location, name), stops)
    resources = trial_placement(static)
    return tune.Tuner(
        tune.with_resources(study_trial, resources),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=limit,
            reuse_actors=True,  # no new process (torch import) per trial
            trial_dirname_creator=lambda t: trial_dirname(t.config["key"], t.trial_id),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=location,
            verbose=0,
            callbacks=[
                ErrorDetail(store),
                EpochResults(store, view),
                MetricsLog(store.root),  # TensorBoard scalars in the study dir (driver-side)
                *mlflow_log.callbacks(store.root),  # and MLflow runs, when it is installed
                *callbacks,
            ],
            failure_config=tune.FailureConfig(max_failures=0),
            # while a trial runs, only its newest checkpoint is needed to resume it
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def trial_placement(static: dict):
    """A trial's resources for Tune: CPUs and GPUs, or for a data-parallel trial one placement
    group: a sliver of a CPU for the trial process (it coordinates and reports, rank 0's
    state flows to it) and one bundle per worker (trials.training.parallel)."""
    from ray import tune

    par = static.get("parallel")
    if not par:
        return {"cpu": static["cpus"], "gpu": static["gpus"]}
    worker = {"CPU": float(par["cpus_per_worker"])}
    if par["gpus_per_worker"]:
        worker["GPU"] = float(par["gpus_per_worker"])
    bundles = [{"CPU": TRIAL_DRIVER_CPUS}] + [dict(worker) for _ in range(par["workers_per_trial"])]
    return tune.PlacementGroupFactory(bundles, strategy=par["placement"])


@contextlib.contextmanager
def _legacy_output():
    """Tune's legacy output engine, which is silent at verbose=0 (restored afterwards)."""
    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = before


def drive(store: StudyStore, proposer, **resources) -> None:
    """Run the proposer's remaining trials, if any; the results table is rewritten from the
    per-candidate records whatever happens, so an interrupted run leaves it current.
    The caller has run `recover(store)` before building the proposer; it runs again at the
    end, so a stopped run (Ctrl-C, a full disk) leaves no record `running`."""
    try:
        if proposer.has_work():
            execute(store, proposer, **resources)
    except BaseException:
        _settle_quietly(store)  # the error in flight is the one to report
        raise
    recover(store)
    write_results(store)


def _settle_quietly(store: StudyStore) -> None:
    for step in (recover, write_results):
        with contextlib.suppress(Exception):
            step(store)


def run_study(
    out_dir: str | Path,
    candidates: list[Candidate],
    train_config,
    *,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    address: str | None = None,
    max_failures: int = 1,
    progress: bool = True,
    time_batch: int | None = None,
    checkpoint_storage: str | None = None,
    keep_weights: bool = False,
    early_stop=None,
    max_concurrent: int | None = None,
    **parallel,
):
    """Train every candidate not already finished, one Tune trial each; resumable.

    Returns one row per given candidate (with that candidate's tags), as load_results.
    `max_failures`: failed attempts allowed per candidate before it is recorded failed.
    `early_stop`: an early_stop.EarlyStop with a scheduler (ASHA; a pruner needs an Optuna
    study, `study run --sampler tpe`); candidates it stops are recorded `stopped`.
    `max_concurrent`: at most this many trials at once (default: as many as fit).
    `parallel`: workers_per_trial, cpus_per_worker, gpus_per_worker, placement (execute).
    """
    if max_failures < 1:
        raise StudyError(f"max_failures must be >= 1, got {max_failures}")
    scheduler = _scheduler(early_stop, train_config.epochs)
    store = StudyStore(out_dir)
    store.open({"source": "api"})
    train = normalize_train(train_config.to_dict())
    with store.lock():
        recover(store)
        keys = [store.add(c.spec, train, c.tags) for c in candidates]
        proposer = KeyProposer(store, usable_keys(store, keys), max_failures)
        drive(
            store,
            proposer,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            address=address,
            progress=progress,
            time_batch=time_batch,
            checkpoint_storage=checkpoint_storage,
            keep_weights=keep_weights,
            scheduler=scheduler,
            max_concurrent=max_concurrent,
            **parallel,
        )
    usable = set(usable_keys(store, keys, warn=lambda line: None))
    return rows_frame(
        [
            candidate_row(store, k, c.tags or None)
            for k, c in zip(keys, candidates, strict=True)
            if k in usable
        ]
    )


def _scheduler(early_stop, epochs: float):
    """The Tune scheduler of an API study's EarlyStop (validated; None stops nothing)."""
    from trials.study.schedulers import tune_scheduler  # ray

    if early_stop is None or not early_stop.active:
        return None
    stop = checked(early_stop, epochs=epochs, sampler="random")  # no Optuna here: no pruner
    return tune_scheduler(stop, epochs)


def normalize_train(train: dict) -> dict:
    """Absolute dataset paths: trials run in other working directories (and nodes)."""
    ds = str(train.get("dataset", ""))
    if ds and Path(ds).exists():
        train = {**train, "dataset": str(Path(ds).resolve())}
    return train
