"""The Ray Tune trial: train one candidate, time it, and write its own final record.

The trial, not the driver, writes `status.json` when it ends, so a result survives a driver
killed a moment later. Every Python exception (NaN loss, CUDA out of memory, a bad spec) is
caught and recorded as a failed attempt; a trial whose process dies is recorded by the
driver (runner.StudySearcher). Fault injection for tests and drills: the driver passes
FASTSCALE_STUDY_FAULTS (see docs/studies.md) to each trial through its config.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback

from trials.study.store import StudyStore, canonical, now

FAULT_ENV = "FASTSCALE_STUDY_FAULTS"


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


def _report(metrics: dict) -> None:
    import warnings

    from ray import tune

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # called directly, outside a Tune session
        tune.report(metrics)


def study_trial(config: dict) -> None:
    """Tune function trainable. config: study, key, cpus, gpus, time_batch, faults."""
    from spaces.specs import spec_from_dict
    from trials.recipe import TrainConfig
    from trials.study.results import trained_spec

    t_start = time.perf_counter()
    store = StudyStore(config["study"])
    key = config["key"]
    prev = store.status(key)
    if prev["status"] == "done":  # never train a finished candidate twice
        _report({"final": True, "status": "done", "record": canonical(prev)})
        return
    cand = store.candidate(key)
    threads = max(1, int(round(float(config.get("cpus") or 1))))
    gpus = float(config.get("gpus") or 0)
    attempt = int(prev["attempts"]) + 1
    rec = {
        **{k: v for k, v in prev.items() if k in ("failures", "failure", "epochs_done")},
        "status": "running",
        "attempts": attempt,
        "hostname": socket.gethostname(),
        "node": _node_id(),
        "pid": os.getpid(),
        "threads": threads,
        "started": now(),
    }
    rec.setdefault("epochs_done", 0)
    store.write_status(key, rec)
    store.log(key, f"attempt {attempt} starts on {rec['hostname']} node {rec['node']}")
    try:
        import torch

        torch.set_num_threads(threads)
        fault = injected_failure(parse_faults(config.get("faults")), key, attempt)
        if fault == "exit":
            os._exit(137)
        if fault:
            raise InjectedFault(f"injected failure of attempt {attempt} ({FAULT_ENV})")
        from trials.timing import time_model
        from trials.train import train

        cfg = TrainConfig.from_dict(cand["train"]).replace(
            threads=threads, device="cuda" if gpus > 0 else cand["train"].get("device", "cpu")
        )
        spec = spec_from_dict(dict(cand["spec"]))
        first_epoch = None

        def on_epoch(r: dict) -> None:
            nonlocal first_epoch
            first_epoch = r["epoch"] if first_epoch is None else first_epoch
            rec.update(epochs_done=int(r["epoch"]), last_val_error=r["error"])
            store.write_status(key, rec)
            store.log(key, "epoch " + json.dumps(r, default=str))
            _report(
                {
                    "epoch": int(r["epoch"]),
                    "epochs": cfg.epochs,
                    "val_error": float(r["error"]),
                    "train_loss": float(r["train_loss"]),
                    "epoch_time": float(r["epoch_time"]),
                    "attempt": attempt,
                }
            )

        t_train = time.perf_counter()
        res = train(spec, cfg, out_dir=store.ckpt_dir(key), on_epoch=on_epoch)
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
        rec.update(
            status="done",
            error=res["error"],
            best_epoch=res.get("best_epoch"),
            final_error=res.get("final_error"),
            flops=res["flops"],
            params=res["params"],
            acts=res["acts"],
            epoch_time=res["epoch_time"],
            images_per_s=res.get("images_per_s"),
            infer_time=infer,
            epochs_done=len(res["epochs"]),
            resumed_at_epoch=(first_epoch - 1) if first_epoch else len(res["epochs"]),
            failure=None,
            finished=now(),
            train_s=t_train,  # inside trials.train.train
            wall_s=time.perf_counter() - t_start,  # the whole trial function
        )
        store.write_status(key, rec)
        store.log(key, f"attempt {attempt} done: error {res['error']}")
    except Exception as exc:
        rec.update(
            status="failed",
            failures=int(rec.get("failures", 0)) + 1,
            failure=one_line(exc),
            finished=now(),
        )
        store.write_status(key, rec)
        store.log(key, f"attempt {attempt} failed:\n{traceback.format_exc()}")
        if "out of memory" in str(exc).lower():
            try:
                import torch

                torch.cuda.empty_cache()
            except Exception:
                pass
    _report({"final": True, "status": rec["status"], "record": canonical(rec)})
