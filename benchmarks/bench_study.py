"""Study benchmarks, run by hand (not part of the tests):

overhead  Ray Tune per-trial overhead against calling the same trainable directly.
          The same K candidates train twice, one at a time: (a) the trial function
          (`run_trial`, reports dropped) called in this process, (b) `run_study` with one trial at a time on an embedded
          Ray started beforehand (its start-up is reported apart). The per-trial overhead
          is ((b) - (a)) / K; as a fixed cost it is extrapolated to 60 s trials.
resume    kill -9 of a `fastscale study run` driver mid-study, then a rerun: candidates
          done before and after, and whether any candidate trained twice.

.venv/bin/python benchmarks/bench_study.py overhead [--trials 4] [--epochs 2]
.venv/bin/python benchmarks/bench_study.py resume [-n 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spaces.sampler import DesignSpace, sample
from trials.study import Candidate, StudyStore, run_study
from trials.study.ray_reap import reap
from trials.study.runner import normalize_train
from trials.study.store import canonical
from trials.study.trainable import run_trial
from trials.training.recipe import TrainConfig, available_cpus


def candidates(n: int, resolution: int, regime: float, seed: int = 0):
    space = DesignSpace.named(
        "regnetx", resolution=resolution, fixed={"num_classes": 10, "in_channels": 1}
    )
    return [Candidate(d["spec"]) for d in sample(space, regime, n=n, seed=seed)]


def overhead(args) -> dict:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cands = candidates(args.trials, args.resolution, args.regime)
    cfg = TrainConfig(
        epochs=args.epochs, train_size=args.train_size, val_size=512, resolution=args.resolution
    )
    cpus = args.cpus or available_cpus()  # one trial at a time, all cores each
    work = Path(tempfile.mkdtemp(prefix="bench-study-"))
    direct, direct_recs = _direct(cands, cfg, cpus, work / "direct")
    # (b) through Ray Tune: the same candidates, a fresh study directory
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = run_study(work / "ray", cands, cfg, cpus_per_trial=cpus, progress=False)
    via_ray = time.perf_counter() - t0
    ray.shutdown()
    assert (df["status"] == "done").all()
    ray_store = StudyStore(work / "ray")
    ray_recs = [ray_store.status(key) for key in ray_store.keys()]
    return {
        "trials": len(direct),
        "cpus_per_trial": cpus,
        **_overhead(direct, direct_recs, via_ray, ray_recs, ray_init),
        "dir": str(work),
    }


def _direct(cands, cfg, cpus: int, out: Path) -> tuple[list[float], list[dict]]:
    """(a) the trainable itself, in this process, one candidate after another: the wall
    seconds and the record of each."""
    store = StudyStore(out)
    store.create({"source": "api"})
    train = normalize_train(cfg.to_dict())
    keys = [store.add(c.spec, train) for c in cands]
    seconds, records = [], []
    for key in keys:
        cand = store.candidate(key)
        config = {
            "key": key,
            "candidate": canonical({"spec": cand["spec"], "train": cand["train"]}),
            "attempt": 1,
            "cpus": cpus,
            "gpus": 0,
        }
        t0 = time.perf_counter()
        rec = run_trial(config, lambda metrics, directory: None)
        seconds.append(time.perf_counter() - t0)
        records.append(rec)
        print(f"direct {key}: {seconds[-1]:.1f}s", file=sys.stderr, flush=True)
        assert rec["status"] == "done", rec
    return seconds, records


def _overhead(direct, direct_recs, via_ray: float, ray_recs, ray_init: float) -> dict:
    """What each path spends besides training, per trial, and Ray's share of a 60 s trial.
    Training compute (inside trials.training.train.train) is the same work either way but swings with
    the machine's load, so it is taken out of both."""
    k = len(direct)
    direct_other = sum(d - r["train_s"] for d, r in zip(direct, direct_recs, strict=True)) / k
    ray_other = (via_ray - sum(r["train_s"] for r in ray_recs)) / k
    outside_fn = (via_ray - sum(r["wall_s"] for r in ray_recs)) / k
    per_trial = ray_other - direct_other
    mean_train = sum(r["train_s"] for r in direct_recs + ray_recs) / (2 * k)
    return {
        "direct_wall_s": [round(t, 2) for t in direct],
        "direct_train_s": [round(r["train_s"], 2) for r in direct_recs],
        "ray_study_wall_s": round(via_ray, 2),
        "ray_train_s": [round(r["train_s"], 2) for r in ray_recs],
        "ray_init_s": round(ray_init, 2),
        "mean_train_s": round(mean_train, 2),
        "non_training_per_trial_direct_s": round(direct_other, 2),
        "non_training_per_trial_ray_s": round(ray_other, 2),
        "ray_outside_trial_function_per_trial_s": round(outside_fn, 2),
        "ray_overhead_per_trial_s": round(per_trial, 2),
        "overhead_pct_at_60s_trial": round(100 * per_trial / 60, 1),
    }


def resume(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    out = work / "study"
    cmd = [sys.executable, "-m", "trials", "study", "run", "--space", "regnetx"]
    cmd += ["--regime", "5MF", "-n", str(args.n), "--resolution", "16", "--epochs", "2"]
    cmd += ["--train-size", "256", "--val-size", "256", "--batch-size", "64", "--out", str(out)]
    # the driver's Ray in a private temp dir: after the kill, stop exactly its leftovers
    ray_tmp = tempfile.mkdtemp(prefix="fsray-", dir="/tmp")
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_TMPDIR": ray_tmp}
    store = StudyStore(out)

    def states():
        if not (out / "study.json").exists():
            return {}
        return {k: store.status(k)["status"] for k in store.keys()}

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while proc.poll() is None:
        s = list(states().values())
        mid_epoch = any(  # a running candidate with an epoch checkpoint already written
            store.status(k)["epochs_done"] >= 1 for k, v in states().items() if v == "running"
        )
        if s.count("done") >= args.kill_after and mid_epoch:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.perf_counter() - t0
    time.sleep(3)
    orphans = sorted({cmd.split()[0].rsplit("/", 1)[-1] for cmd in reap(ray_tmp).values()})
    before = states()
    epochs_before = {k: store.status(k)["epochs_done"] for k in before}
    t1 = time.perf_counter()
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env)
    rerun_s = time.perf_counter() - t1
    reap(ray_tmp)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    after = states()
    trained = {k: store.log_path(k).read_text().count(" done: error ") for k in store.keys()}
    return {
        "n": args.n,
        "killed_after_s": round(killed_at, 1),
        "done_before_kill": sum(v == "done" for v in before.values()),
        "interrupted": sum(v == "running" for v in before.values()),
        "rerun_exit": rerun.returncode,
        "rerun_s": round(rerun_s, 1),
        "done_after": sum(v == "done" for v in after.values()),
        "candidates": len(after),
        "trained_twice": sorted(k for k, c in trained.items() if c > 1),
        "orphaned_ray_processes_killed": orphans,
        "attempts": {k: store.status(k)["attempts"] for k in store.keys()},
        "interrupted_resumed_at_epoch": {  # epochs done at the kill -> where training resumed
            k: [epochs_before[k], store.status(k).get("resumed_at_epoch")]
            for k, v in before.items()
            if v == "running"
        },
        "dir": str(work),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--trials", type=int, default=4)
    o.add_argument("--epochs", type=int, default=2)
    o.add_argument("--train-size", type=int, default=2048)
    o.add_argument("--resolution", type=int, default=32)
    o.add_argument("--regime", type=float, default=20e6)
    o.add_argument("--cpus", type=int, default=None)
    r = sub.add_parser("resume")
    r.add_argument("-n", type=int, default=6)
    r.add_argument("--kill-after", type=int, default=2, help="kill once this many are done")
    args = ap.parse_args()
    result = overhead(args) if args.what == "overhead" else resume(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
