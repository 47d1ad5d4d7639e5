"""The Ray Tune trial: train one candidate and hand everything back through Tune.

A trial never opens the study directory (on a real cluster it runs on a node that cannot
see it). Its config carries what it needs — the candidate (spec and recipe), the attempt
number, the checkpoint to resume from (a storage location), resources — and it returns:

- after every epoch, `tune.report(metrics, checkpoint=...)`: the epoch's metrics and a
  checkpoint directory (trials.training.train's resumable state plus `record.json`, the trial's
  record so far), which Tune copies to the checkpoint storage before `report` returns;
- at the end, one last report marked `final` whose checkpoint holds the final record
  (`done` or `failed`, with the result or the one-line failure) and, with `keep_weights`,
  the final weights; a failed attempt's last checkpoint also keeps the resumable state.

So a result is durable in the storage before the driver hears of it, and a driver killed a
moment later finds it there on resume (trials.study.records.recover). The driver is the only
writer of the study store. Every Python exception (NaN loss, CUDA out of memory, a bad spec)
becomes a failed record; a trial whose process dies is recorded by the driver.
Fault injection for tests and drills: FASTSCALE_STUDY_FAULTS (docs/studies.md) travels in
the config.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path

from spaces.specs import spec_from_dict
from trials.study.checkpoint_storage import RECORD, STATE, WEIGHTS
from trials.study.results import trained_spec
from trials.study.store import now
from trials.training.parallel import ParallelConfig
from trials.training.recipe import TrainConfig

FAULT_ENV = "FASTSCALE_STUDY_FAULTS"
TRACEBACK_LINES = 40  # of a failure, sent to the driver for the candidate's log


class InjectedFault(RuntimeError):
    """Raised on purpose by FASTSCALE_STUDY_FAULTS, before any training."""


def parse_faults(text: str | None) -> dict[str, tuple[int, str]]:
    """'KEYPREFIX:N[:exit],...' -> {prefix: (N, mode)}: the first N attempts of matching
    candidates fail. Mode 'raise' (default) raises InjectedFault; 'exit' kills the trial
    process (os._exit), as an out-of-memory kill would. '*' matches every candidate.
    """
    out: dict[str, tuple[int, str]] = {}
    for item in (text or "").split(","):
        parts = [p.strip() for p in item.split(":")]
        if not parts[0]:
            continue
        count = int(parts[1]) if len(parts) > 1 and parts[1] else 1
        out[parts[0]] = (count, parts[2] if len(parts) > 2 and parts[2] else "raise")
    return out


def injected_failure(faults: dict[str, tuple[int, str]], key: str, attempt: int) -> str | None:
    """The fault mode for this attempt of this candidate, or None."""
    for prefix, (count, mode) in faults.items():
        if (prefix == "*" or key.startswith(prefix)) and attempt <= count:
            return mode
    return None


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _node_id() -> str | None:
    try:
        import ray

        if not ray.is_initialized():  # a direct call: never start Ray as a side effect
            return None
        return ray.get_runtime_context().get_node_id()
    except Exception:
        return None


def tune_report(metrics: dict, directory: Path | None) -> None:
    """tune.report with the directory as the checkpoint (persisted before this returns)."""
    import warnings

    from ray import tune

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # called directly, outside a Tune session
        checkpoint = tune.Checkpoint.from_directory(str(directory)) if directory else None
        tune.report(metrics, checkpoint=checkpoint)


def write_record(directory: Path, record: dict) -> None:
    tmp = directory / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, sort_keys=True, default=str) + "\n")
    os.replace(tmp, directory / RECORD)


def fetch_checkpoint(location: str, into: Path) -> None:
    """Download a reported checkpoint (any storage Tune supports) into a local directory."""
    from ray import tune

    tune.Checkpoint(location).to_directory(str(into))


def final_weights(state_dir: Path, into: Path) -> None:
    """The averaged (else raw) model weights of the last epoch, without optimizer state."""
    import torch

    state = torch.load(state_dir / STATE, map_location="cpu", weights_only=True)
    weights = state.get("ema") or state["model"]
    torch.save(weights, into / WEIGHTS)


def trial_threads(config: dict) -> int:
    """The study's fixed thread count (part of the candidate's recipe), else --cpus-per-trial."""
    train = json.loads(config["candidate"])["train"]
    return int(train.get("threads") or max(1, round(float(config.get("cpus") or 1))))


def study_trial(config: dict) -> None:
    """Tune function trainable; see run_trial for the config."""
    run_trial(config, tune_report)


def run_trial(config: dict, report) -> dict:
    """Train config's candidate; `report(metrics, directory)` hands results to the driver.

    config: key, candidate (canonical JSON of {"spec", "train"}), attempt, resume (a
    checkpoint location or None), cpus, gpus, time_batch, faults, keep_weights.
    Returns the final record (also sent as the last report).
    """
    t_start = time.perf_counter()
    key, attempt = config["key"], int(config["attempt"])
    threads = trial_threads(config)
    rec = {
        "status": "running",
        "attempt": attempt,
        "hostname": socket.gethostname(),
        "node": _node_id(),
        "pid": os.getpid(),
        "threads": threads,
        "started": now(),
        "epochs_done": 0,
    }
    work = Path(tempfile.mkdtemp(prefix=f"fastscale-trial-{key}-"))
    state_dir, final_dir = work / "state", work / "final"
    final_dir.mkdir()
    metrics = {"final": True}
    try:
        if config.get("resume"):
            fetch_checkpoint(config["resume"], state_dir)
        state_dir.mkdir(exist_ok=True)
        result = _train(config, rec, threads, state_dir, report)
        rec.update(result, status="done", failure=None, finished=now())
        rec["wall_s"] = time.perf_counter() - t_start  # the whole trial function
        if config.get("keep_weights"):
            final_weights(state_dir, final_dir)
        write_record(final_dir, rec)
        report_dir = final_dir
    except Exception as exc:
        rec.update(status="failed", failure=one_line(exc), finished=now())
        lines = traceback.format_exc().rstrip().splitlines()[-TRACEBACK_LINES:]
        metrics["traceback"] = "\n".join(lines)
        _release_gpu_memory(exc)
        # keep the last resumable state with the failure, so a retry continues from it
        report_dir = state_dir if (state_dir / STATE).exists() else final_dir
        metrics["resumable"] = report_dir is state_dir
        write_record(report_dir, rec)
    # val_error: a scheduler's metric must be in every result Tune sees (strict checking)
    metrics["val_error"] = rec.get("error", rec.get("last_val_error"))
    try:
        report(
            {**metrics, "status": rec["status"], "record": json.dumps(rec, default=str)}, report_dir
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rec


def _train(config: dict, rec: dict, threads: int, state_dir: Path, report) -> dict:
    """Train (resuming from state_dir's checkpoint when there is one); the result fields."""

    key, attempt = config["key"], int(config["attempt"])
    cand = json.loads(config["candidate"])
    gpus = float(config.get("gpus") or 0)
    import torch

    torch.set_num_threads(threads)
    _inject(config, key, attempt)
    from trials.timing.step_time import time_model
    from trials.training.train import train

    par = config.get("parallel")
    if par:  # a data-parallel trial: its workers hold the devices (trials.training.parallel)
        gpus = float(par["gpus_per_worker"])
    cfg = TrainConfig.from_dict(cand["train"]).replace(
        threads=threads, device="cuda" if gpus > 0 else cand["train"].get("device", "cpu")
    )
    spec = spec_from_dict(dict(cand["spec"]))
    epochs_seen: list[int] = []
    on_epoch = _epoch_reporter(rec, state_dir, report, cfg.epochs, attempt, epochs_seen)
    parallel = ParallelConfig(
        workers=int(par["workers_per_trial"]), cpus_per_worker=float(par["cpus_per_worker"]),
        gpus_per_worker=gpus, placement=par["placement"],
    ) if par else None  # fmt: skip
    rec["workers"] = parallel.workers if parallel else 1

    t_train = time.perf_counter()
    res = train(spec, cfg, out_dir=state_dir, on_epoch=on_epoch, parallel=parallel)
    t_train = time.perf_counter() - t_train
    infer = None
    if config.get("time_batch"):
        t = time_model(
            trained_spec(spec, cand["train"]),
            batch_size=int(config["time_batch"]),
            device=cfg.device,
            mode="infer",
            threads=threads,
        )
        infer = t["seconds_per_image"]
    return {
        "error": res["error"],
        "best_epoch": res.get("best_epoch"),
        "final_error": res.get("final_error"),
        "flops": res["flops"],
        "params": res["params"],
        "acts": res["acts"],
        "epoch_time": res["epoch_time"],
        "images_per_s": res.get("images_per_s"),
        "infer_time": infer,
        "epochs_done": len(res["epochs"]),
        "resumed_at_epoch": epochs_seen[0] - 1 if epochs_seen else len(res["epochs"]),
        "workers": res.get("workers", 1),
        "worker_nodes": res["epochs"][-1].get("worker_nodes") if res["epochs"] else None,
        "train_s": t_train,  # inside trials.training.train.train
    }


def _epoch_reporter(rec: dict, state_dir: Path, report, epochs: int, attempt: int, seen: list):
    """trials.training.train's on_epoch: the record so far into the state, then one Tune report with
    the state as its checkpoint (persisted before the report returns)."""

    def on_epoch(r: dict) -> None:
        seen.append(int(r["epoch"]))
        rec.update(epochs_done=int(r["epoch"]), last_val_error=r["error"])
        # the state's size beside it: a copy into storage cut short by a kill is told apart
        # from a whole one (trials.study.checkpoint_storage.state_complete)
        write_record(state_dir, {**rec, "state_bytes": (state_dir / STATE).stat().st_size})
        report(
            {
                "epoch": int(r["epoch"]),
                "epochs": epochs,
                "val_error": float(r["error"]),
                "train_loss": float(r["train_loss"]),
                "epoch_time": float(r["epoch_time"]),
                "attempt": attempt,
                "epoch_record": json.dumps(r, default=str),  # for the candidate's log
            },
            state_dir,
        )

    return on_epoch


def _inject(config: dict, key: str, attempt: int) -> None:
    """Fail this attempt on purpose when FASTSCALE_STUDY_FAULTS says so (tests, drills)."""
    fault = injected_failure(parse_faults(config.get("faults")), key, attempt)
    if fault == "exit":
        os._exit(137)
    if fault:
        raise InjectedFault(f"injected failure of attempt {attempt} ({FAULT_ENV})")


def _release_gpu_memory(exc: BaseException) -> None:
    if "out of memory" in str(exc).lower():
        with contextlib.suppress(Exception):
            import torch

            torch.cuda.empty_cache()
