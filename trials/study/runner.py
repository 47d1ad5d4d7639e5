"""Run a study's candidates as Ray Tune trials, driven by our own record.

Each `execute` is a fresh Tune experiment (its dir under <study>/ray/ is scratch): a custom
Searcher hands Tune the key of the next candidate to run (a pending one, an interrupted one,
a failed one with attempts left, or a new Optuna suggestion), and hears when it ends.
Nothing is restored from Tune's state (ray-project/ray#16891, #30950, #40652).
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from trials.study.progress import StudyView
from trials.study.results import candidate_row, rows_frame, write_results
from trials.study.store import Candidate, StudyError, StudyStore
from trials.study.trainable import FAULT_ENV, study_trial

FINISHED = "FINISHED"
PROBE_TIMEOUT_S = 3.0


class KeyProposer:
    """A fixed list of candidates: runs each until done or out of attempts."""

    def __init__(self, store: StudyStore, keys: list[str], max_failures: int):
        self.store, self.max_failures = store, max_failures
        self.keys = list(dict.fromkeys(keys))
        self.queue = collections.deque(
            k for k in self.keys if not store.is_finished(k, max_failures)
        )
        self.active: set[str] = set()

    @property
    def total(self) -> int:
        return len(self.keys)

    def finished_count(self) -> int:
        return sum(self.store.is_finished(k, self.max_failures) for k in self.keys)

    def has_work(self) -> bool:
        return bool(self.queue)

    def next(self):
        if self.queue:
            key = self.queue.popleft()
            self.active.add(key)
            return key
        return None if self.active else FINISHED

    def done(self, key: str, record: dict) -> None:
        self.active.discard(key)
        if not self.store.is_finished(key, self.max_failures):
            self.queue.append(key)


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
    """Attach to `address`, or start an embedded local Ray. True if we started/attached."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        probe(address)
    from trials.recipe import available_cpus

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(address="local", num_cpus=available_cpus(), **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, version mismatch...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StudyError(f"cannot start or attach to Ray ({address or 'local'}): {first}") from None
    return True


def concurrency(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials fit at once in the cluster's resources (Tune queues the rest)."""
    import ray

    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
    if cpus_per_trial > cpus or gpus_per_trial > gpus:
        raise StudyError(
            f"a trial needs {cpus_per_trial:g} CPU and {gpus_per_trial:g} GPU but the cluster "
            f"has {cpus:g} CPU and {gpus:g} GPU in all"
        )
    n = int(cpus // cpus_per_trial) if cpus_per_trial > 0 else 10**6
    if gpus_per_trial > 0:
        n = min(n, int(round(gpus / gpus_per_trial, 6)))
    return max(1, n)


def settle(store: StudyStore, key: str, before: int, result: dict | None, error: bool) -> dict:
    """Make the record final for an attempt that ended: the trial's own, or a crash."""
    import json

    rec = store.status(key)
    reported = (result or {}).get("record")
    if reported and (rec["status"] == "running" or rec["attempts"] == before):
        reported = json.loads(reported)  # a node without the shared study dir
        if reported.get("status") in ("done", "failed"):
            store.write_status(key, reported)
            return reported
    if rec["attempts"] == before:  # the trial never started (actor could not be created)
        rec = {**rec, "status": "running", "attempts": before + 1}
        store.write_status(key, rec)
    if rec["status"] == "running":
        why = "trial process died" if error else "trial ended without a record"
        rec = store.record_crash(key, f"{why} (worker killed, out of memory or node lost)")
    return rec


def execute(
    store: StudyStore,
    proposer,
    *,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    address: str | None = None,
    progress: bool = True,
    time_batch: int | None = None,
) -> None:
    """Run the proposer's candidates to the end on Ray Tune; the caller holds the lock."""
    from ray import tune

    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise StudyError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    air_output = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy engine is silent at verbose=0
    started = connect(address)
    try:
        limit = concurrency(cpus_per_trial, gpus_per_trial)
        view = StudyView(proposer.total, proposer.finished_count(), enabled=progress)
        static = {
            "study": str(store.root),
            "cpus": cpus_per_trial,
            "gpus": gpus_per_trial,
            "time_batch": time_batch,
            "faults": os.environ.get(FAULT_ENV),
        }
        from trials.study.tune_glue import EpochView, ErrorDetail, StudySearcher

        searcher = StudySearcher(store, proposer, static, view)
        resources = {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
        tuner = tune.Tuner(
            tune.with_resources(study_trial, resources),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=-1,
                max_concurrent_trials=limit,
                reuse_actors=True,  # no new process (torch import) per trial
                trial_dirname_creator=lambda t: f"{t.config.get('key', 'trial')}-{t.trial_id}",
            ),
            run_config=tune.RunConfig(
                name=time.strftime("run-%Y%m%d-%H%M%S") + f"-{os.getpid()}",
                storage_path=str(store.ray_dir),
                verbose=0,
                callbacks=[ErrorDetail(store), EpochView(view)],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
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
    finally:
        if air_output is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = air_output
        if started:
            import ray

            ray.shutdown()


def drive(store: StudyStore, proposer, **resources) -> None:
    """Run the proposer's remaining trials, if any; the results table is rewritten from the
    per-candidate records whatever happens, so an interrupted run leaves it current."""
    try:
        if proposer.has_work():
            execute(store, proposer, **resources)
    finally:
        write_results(store)


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
):
    """Train every candidate not already finished, one Tune trial each; resumable.

    Returns one row per given candidate (with that candidate's tags), as load_results.
    `max_failures`: failed attempts allowed per candidate before it is recorded failed.
    """
    if max_failures < 1:
        raise StudyError(f"max_failures must be >= 1, got {max_failures}")
    store = StudyStore(out_dir)
    store.open({"source": "api"})
    train = normalize_train(train_config.to_dict())
    with store.lock():
        keys = [store.add(c.spec, train, c.tags) for c in candidates]
        proposer = KeyProposer(store, keys, max_failures)
        drive(
            store,
            proposer,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            address=address,
            progress=progress,
            time_batch=time_batch,
        )
    return rows_frame(
        [candidate_row(store, k, c.tags or None) for k, c in zip(keys, candidates, strict=True)]
    )


def normalize_train(train: dict) -> dict:
    """Absolute dataset paths: trials run in other working directories (and nodes)."""
    ds = str(train.get("dataset", ""))
    if ds and Path(ds).exists():
        train = {**train, "dataset": str(Path(ds).resolve())}
    return train
