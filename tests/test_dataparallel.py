"""Data-parallel training (`train --workers N`, trials.training.parallel / rank) for real:
torch.distributed over gloo between Ray actors on the two-node loopback cluster
(tests/fixtures_ray.py, one CPU per node, so the two workers sit on different nodes).

What is checked, on a Fashion-MNIST slice (6 steps per epoch of a global batch of 32):

- with --sync-bn, N = 2 reproduces the one-process run's per-step training losses over two
  epochs (12 steps, mixup and label smoothing on) to within float reduction error (the
  order in which gradients and BN statistics are summed): measured max |Δ| 4.8e-7,
  asserted below SYNC_TOL = 1e-5;
- without it (per-worker BatchNorm, as pycls) the losses differ more, but little (measured
  max |Δ| 4.8e-3 over one epoch; asserted below PER_WORKER_BN_TOL = 0.05 and above ten
  times the synced gap, so a --sync-bn that synchronised nothing would fail);
- a worker SIGKILLed mid-run ends the run with WorkerLost; rerunning resumes from the last
  checkpoint and, with the same N, repeats the uninterrupted run's epoch; the same
  checkpoint resumes with N = 1 too (one unsharded state);
- the CLI reports `workers`, bad input is one line and exit 2 before anything starts.

CI cost: about two minutes on the shared 2-core VM (four short data-parallel runs, each
mostly actor start-up and torch import in the workers).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from spaces.specs import StageSpec
from trials.cli import main
from trials.training.parallel import KILL_ENV, ParallelConfig, WorkerLost
from trials.training.recipe import TrainConfig
from trials.training.train import CHECKPOINT, train

SYNC_TOL = 1e-5  # measured 4.8e-7 over 12 steps
PER_WORKER_BN_TOL = 0.05  # measured 4.8e-3 over 6 steps

CONFIG = TrainConfig(
    epochs=2, batch_size=32, train_size=192, val_size=64, resolution=32,
    precise_bn=64, threads=1, seed=3,
)  # fmt: skip
# Three X stages ending at 2x2 pixels. Not the 4-stage test network of tests/fixtures_train.py:
# at 16 px its last stages are 1x1 and some BatchNorm channels have zero variance over the
# batch, so its gradients are rounding noise amplified by 1/sqrt(eps) and no two summation
# orders agree (measured: 2e-2 apart after one step, with or without data parallelism).
SPEC = StageSpec(
    block="X", depths=(1, 1, 1), widths=(16, 24, 32), group_widths=(8, 8, 8),
    bottlenecks=(1, 1, 1), strides=(2, 2, 2), resolution=32, stem_width=16,
)  # fmt: skip


def _run(config=CONFIG, out=None, **parallel):
    losses: list[float] = []
    result = train(
        SPEC, config, out_dir=out, parallel=ParallelConfig(**parallel),
        on_losses=lambda epoch, steps: losses.extend(steps),
    )  # fmt: skip
    return result, np.array(losses)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return _run(out=tmp_path_factory.mktemp("one"))


@pytest.fixture(scope="module")
def synced(ray_cluster, tmp_path_factory):
    return _run(out=tmp_path_factory.mktemp("synced"), workers=2, sync_bn=True)


def test_sync_bn_two_workers_reproduce_one_process_step_losses(one_process, synced):
    (r1, losses1), (r2, losses2) = one_process, synced
    assert len(losses1) == len(losses2) == 12
    gap = np.abs(losses1 - losses2)
    assert gap.max() < SYNC_TOL, gap
    assert r2["workers"] == 2 and r2["worker_batch"] == 16 and r2["sync_bn"] is True
    assert r1["workers"] == 1 and r1["worker_batch"] == 32
    assert [e["workers"] for e in r2["epochs"]] == [2, 2]
    # one result for the run: every epoch's error is a fraction of the 64 validation images
    for e in r2["epochs"]:
        assert (e["error"] * 64) == pytest.approx(round(e["error"] * 64), abs=1e-9)


def test_per_worker_batchnorm_differs_a_little(ray_cluster, one_process, synced):
    _, losses = _run(CONFIG.replace(epochs=1), workers=2)
    reference = one_process[1][: len(losses)]
    gap = np.abs(losses - reference)
    synced_gap = np.abs(synced[1][: len(losses)] - reference)
    assert gap.max() < PER_WORKER_BN_TOL, gap
    assert gap.max() > 10 * synced_gap.max()  # per-worker statistics really are per worker


def test_a_killed_worker_stops_the_run_and_the_rerun_resumes(
    ray_cluster, synced, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    monkeypatch.setenv(KILL_ENV, "1:2")  # rank 1 SIGKILLs itself at the start of epoch 2
    with pytest.raises(WorkerLost, match="rerun the same command to resume"):
        _run(out=out, workers=2, sync_bn=True)
    monkeypatch.delenv(KILL_ENV)
    assert json.loads((out / "result.json").read_text())["best_epoch"] == 1
    shutil.copytree(out, tmp_path / "other_n", ignore=shutil.ignore_patterns(".train.lock"))

    resumed, losses = _run(out=out, workers=2, sync_bn=True)
    assert len(losses) == 6  # only epoch 2 was trained again
    reference = synced[0]["epochs"]
    for got, want in zip(resumed["epochs"], reference, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], abs=1e-6)
        assert got["error"] == pytest.approx(want["error"], abs=1e-9)

    fewer, losses = _run(out=tmp_path / "other_n")  # the same checkpoint, one process
    assert len(losses) == 6 and fewer["workers"] == 1 and len(fewer["epochs"]) == 2
    assert fewer["epochs"][0] == resumed["epochs"][0]
    assert (tmp_path / "other_n" / CHECKPOINT).exists()


def test_cli_reports_workers(ray_cluster, capsys):
    code = main(
        ["train", "RegNetX-200MF", "-r", "16", "--train-size", "64", "--val-size", "32",
         "--batch-size", "32", "--threads", "1", "--workers", "2", "--json"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["workers"] == 2 and result["worker_batch"] == 16


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers", "0"], "'--workers'"),
        (["--workers", "3"], "does not split evenly over 3 workers"),
        (["--workers", "2", "--batch-size", "33"], "global batch 33"),
        (["--sync-bn"], "--sync-bn needs --workers >= 2"),
        (["--workers", "64", "--device", "cuda"], "GPUs"),
        (["--workers", "64", "--batch-size", "128"], "CPUs"),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(args, needle, capsys, tmp_path):
    import ray

    connected = ray.is_initialized()
    out = tmp_path / "run"
    code = main(["train", "RegNetX-200MF", "-r", "16", "--out", str(out), *args])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fastscale: error:"), err
    assert needle in lines[0], lines[0]
    assert not out.exists()  # refused before the output directory was made
    assert ray.is_initialized() == connected  # and before any Ray was started


def test_study_two_workers_on_two_nodes_survive_a_driver_kill(ray_cluster, tmp_path):
    """`study run --workers-per-trial 2 --placement SPREAD` on the two one-CPU nodes: each
    worker takes 0.6 CPU, so the two cannot share a node. The driver is SIGKILLed right
    after the first epoch's checkpoint reached the storage (FASTSCALE_STUDY_KILL), then
    resumed: the candidate done, not lost, not trained to completion twice, its workers
    on two nodes. One candidate keeps the CI cost near a minute and a half."""
    import os
    import signal
    import subprocess
    import sys

    from trials.study import StudyStore

    out = tmp_path / "study"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "1", "--epochs", "2",
            "--resolution", "16", "--train-size", "128", "--val-size", "64", "--batch-size", "64",
            "--workers-per-trial", "2", "--cpus-per-worker", "0.6", "--placement", "SPREAD",
            "--out", str(out), "--address", ray_cluster.address, "--json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}

    def driver(kill_at=None):
        extra = {"FASTSCALE_STUDY_KILL": kill_at} if kill_at else {}
        return subprocess.run(
            [sys.executable, "-m", "trials", *args], capture_output=True, text=True,
            env={**env, **extra}, timeout=600,
        )  # fmt: skip

    first = driver("epoch:1")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    last = driver()
    assert last.returncode == 0, last.stderr[-3000:]
    rows = json.loads(last.stdout)
    assert len(rows) == 1 and rows[0]["status"] == "done"
    store = StudyStore(out)
    for key in store.keys():
        assert store.log_path(key).read_text().count(" done: error ") == 1
        record = store.status(key)
        assert record["workers"] == 2
        # resumed from the epoch-1 checkpoint, or finished before the cluster stopped it
        assert record.get("resumed_at_epoch", 0) >= 1 or record["attempts"] == 1
        nodes = record["worker_nodes"]
        assert len(nodes) == 2 and nodes[0] != nodes[1]  # SPREAD: one worker per node


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--gpus-per-trial", "2"], "use --workers-per-trial N --gpus-per-worker 1"),
        (["--workers-per-trial", "3", "--batch-size", "64"], "does not split evenly over 3"),
        (["--workers-per-trial", "0"], "'--workers-per-trial'"),
        (["--workers-per-trial", "2", "--placement", "STRICT"], "'--placement'"),
    ],
)
def test_study_bad_parallel_input_is_one_line_and_creates_nothing(args, needle, capsys, tmp_path):
    out = tmp_path / "study"
    code = main(["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "1",
                 "--out", str(out), *args])  # fmt: skip
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fastscale: error:"), err
    assert needle in lines[0], lines[0]
    assert not out.exists()
