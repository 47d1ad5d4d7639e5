"""Studies on a real two-node Ray cluster (tests/fixtures_ray.py): tiny real models, real
Fashion-MNIST slices, real SQLite. One CPU per trial, resolution 16, one or two epochs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spaces.complexity import complexity
from spaces.sampler import DesignSpace, sample
from trials.cli import main
from trials.study import Candidate, StudyStore, candidate_key, load_results, run_study
from trials.study.runner import normalize_train
from trials.training.recipe import TrainConfig

pytestmark = pytest.mark.slow
TINY = ["--resolution", "16", "--train-size", "128", "--val-size", "128", "--batch-size", "64"]


def tiny_config(**kw) -> TrainConfig:
    base = dict(epochs=1, train_size=128, val_size=128, resolution=16, batch_size=64)
    return TrainConfig(**{**base, **kw})


def tiny_specs(n: int, seed: int = 0):
    space = DesignSpace.named("regnetx", resolution=16, fixed={"num_classes": 10, "in_channels": 1})
    return [d["spec"] for d in sample(space, 5e6, n=n, seed=seed)]


def snapshot(store: StudyStore, keys) -> dict:
    out = {}
    for k in keys:
        files = [store.cdir(k) / "status.json", store.cdir(k) / "log.txt"]
        out[k] = [(f.read_bytes(), f.stat().st_mtime_ns) for f in files if f.exists()]
    return out


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, **extra}


def test_random_study_on_two_nodes_then_resume_is_a_noop(ray_cluster, tmp_path):
    import ray

    specs = tiny_specs(4)
    cands = [Candidate(s, {"method": "search", "regime": "5MF"}) for s in specs]
    df = run_study(tmp_path, cands, tiny_config(), progress=False)
    assert list(df["status"]) == ["done"] * 4
    assert df["error"].between(0, 1).all() and (df["epoch_time"] > 0).all()
    assert list(df["flops"]) == [complexity(s).flops for s in specs]  # trained = sampled shape
    assert (df["attempts"] == 1).all() and (df["method"] == "search").all()
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(df["node"]) <= alive and len(set(df["node"])) == 2  # both nodes trained
    assert (tmp_path / "results.parquet").exists()

    store = StudyStore(tmp_path)
    before = snapshot(store, store.keys())
    again = run_study(tmp_path, cands, tiny_config(), progress=False)
    assert snapshot(store, store.keys()) == before  # completed candidates untouched
    assert again[["key", "status", "error"]].equals(df[["key", "status", "error"]])
    assert len(load_results(tmp_path)) == 4


def test_failing_trials_are_recorded_retried_and_never_stop_the_study(
    ray_cluster, tmp_path, monkeypatch
):
    specs = tiny_specs(3, seed=1)
    cfg = tiny_config()
    train = normalize_train(cfg.to_dict())
    k0, k1, k2 = (candidate_key(s.to_dict(), train) for s in specs)
    # k0 fails once then trains; k1 always fails; k2's process dies once (as an OOM kill)
    monkeypatch.setenv("FASTSCALE_STUDY_FAULTS", f"{k0}:1,{k1}:9,{k2}:1:exit")
    df = run_study(tmp_path, [Candidate(s) for s in specs], cfg, max_failures=2, progress=False)
    rows = df.set_index("key")
    assert (rows.loc[k0, "status"], rows.loc[k0, "attempts"], rows.loc[k0, "failures"]) == (
        "done",
        2,
        1,
    )
    assert (rows.loc[k1, "status"], rows.loc[k1, "attempts"]) == ("failed", 2)
    assert rows.loc[k1, "failure"].startswith("InjectedFault")
    assert (rows.loc[k2, "status"], rows.loc[k2, "attempts"]) == ("done", 2)
    log = (StudyStore(tmp_path).log_path(k2)).read_text()
    assert "died" in log  # the driver recorded the dead process before the retry

    # A resume with more attempts allowed retries only the failed candidate.
    monkeypatch.delenv("FASTSCALE_STUDY_FAULTS")
    store = StudyStore(tmp_path)
    done_before = snapshot(store, [k0, k2])
    df = run_study(tmp_path, [Candidate(s) for s in specs], cfg, max_failures=3, progress=False)
    rows = df.set_index("key")
    assert (rows.loc[k1, "status"], rows.loc[k1, "attempts"]) == ("done", 3)
    assert snapshot(store, [k0, k2]) == done_before


def test_nan_loss_is_a_recorded_failure(ray_cluster, tmp_path):
    cfg = tiny_config(base_lr=1e8, batch_size=16, mixup=0, ema=False)
    df = run_study(tmp_path, [Candidate(tiny_specs(1)[0])], cfg, progress=False)
    assert df.loc[0, "status"] == "failed" and df.loc[0, "attempts"] == 1
    assert df.loc[0, "failure"].startswith("TrainingDiverged")


def _wait_for(predicate, proc, timeout=240):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def _wait_until_idle(cluster, timeout=90.0) -> None:
    """Until every CPU of the cluster is free again: a killed driver's trial actors are gone
    (a fixed pause was too short once on a loaded machine)."""
    import ray

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        total = ray.cluster_resources().get("CPU", 0)
        if total and ray.available_resources().get("CPU", 0) >= total:
            return
        time.sleep(0.5)


def test_sigkill_of_the_driver_mid_study_then_resume(ray_cluster, tmp_path):
    out = tmp_path / "study"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "4", "--epochs", "2"]
    args += [*TINY, "--out", str(out), "--address", ray_cluster.address]
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trials", *args], stdout=log, stderr=log, env=clean_env()
    )
    store = StudyStore(out)

    def states():
        return {k: store.status(k) for k in store.keys()} if (out / "study.json").exists() else {}

    def mid_epoch():  # one done, another interrupted after its first epoch
        s = states().values()
        done = any(r["status"] == "done" for r in s)
        return done and any(r["status"] == "running" and r["epochs_done"] >= 1 for r in s)

    def mid_study():
        s = [r["status"] for r in states().values()]
        return "done" in s and "running" in s

    try:
        reached = _wait_for(mid_epoch, proc, timeout=120) or _wait_for(mid_study, proc)
        assert reached, (tmp_path / "driver.log").read_text()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    _wait_until_idle(ray_cluster)  # Ray stops the dead driver's trial actors
    before = states()
    done_before = [k for k, r in before.items() if r["status"] == "done"]
    interrupted = {k: r for k, r in before.items() if r["status"] != "done"}
    assert done_before and interrupted
    files_before = snapshot(store, done_before)

    rerun = subprocess.run(
        [sys.executable, "-m", "trials", *args, "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=420,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = {r["key"]: r for r in json.loads(rerun.stdout)}
    assert len(rows) == 4 and len(store.keys()) == 4  # none duplicated
    not_done = {k: store.status(k) for k, r in rows.items() if r["status"] != "done"}
    assert not not_done, (not_done, {k: store.log_path(k).read_text() for k in not_done})
    assert snapshot(store, done_before) == files_before  # completed ones untouched
    for k, r in interrupted.items():
        final = store.status(k)
        if f"attempt {r['attempts']} recovered from" in store.log_path(k).read_text():
            # the orphaned trial finished and stored its final checkpoint before Ray
            # stopped it: the rerun settles it from storage without training it again
            assert final["attempts"] == r["attempts"]
            continue
        assert final["attempts"] == r["attempts"] + 1  # ran exactly once more
        if r["epochs_done"] >= 1:
            assert final["resumed_at_epoch"] >= 1  # continued from its checkpoint
    for k in store.keys():  # each candidate finished training exactly once
        done_lines = store.log_path(k).read_text().count(" done: error ")
        # the status is written before its log line: a kill between the two (a candidate
        # already done before the rerun) can lose the line, never add a second one
        assert done_lines == 1 or (done_lines == 0 and k in done_before), k


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_optuna_studies_persist_in_sqlite_and_resume(ray_cluster, tmp_path, capsys, sampler):
    import optuna

    out = tmp_path / "study"
    # tpe: the default storage in the study dir; nsga2: an explicit RDB URL elsewhere
    url = f"sqlite:///{tmp_path}/optuna.db" if sampler == "nsga2" else f"sqlite:///{out}/optuna.db"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "2"]
    args += ["--sampler", sampler, *TINY, "--out", str(out), "--json"]
    args += ["--storage", url] if sampler == "nsga2" else []
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    assert all(abs(r["flops"] - 5e6) <= 0.01 * 5e6 for r in rows)  # only in-regime models

    definition = json.loads((out / "study.json").read_text())["definition"]
    study = optuna.load_study(study_name=definition["optuna_study"], storage=url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert {t.user_attrs["key"] for t in complete} == {r["key"] for r in rows}
    assert all(len(t.values) == (1 if sampler == "tpe" else 2) for t in complete)
    by_key = {r["key"]: r for r in rows}
    assert all(t.values[0] == by_key[t.user_attrs["key"]]["error"] for t in complete)
    if sampler == "nsga2":
        assert all(t.values[1] == by_key[t.user_attrs["key"]]["epoch_time"] for t in complete)

    n_trials = len(study.trials)
    resume = ["study", "run", "--out", str(out), "--json"]
    assert main(resume) == 0  # resume: nothing left to ask or train
    capsys.readouterr()
    again = optuna.load_study(study_name=study.study_name, storage=url)
    assert len(again.trials) == n_trials
    if sampler == "nsga2":
        code = main([*resume, "--storage", f"sqlite:///{tmp_path}/other.db"])
        assert code == 2 and "--storage" in capsys.readouterr().err


def test_spec_file_study_trains_each_spec_at_its_own_resolution(ray_cluster, tmp_path, capsys):
    from spaces.io import save_specs

    spec = tiny_specs(1, seed=3)[0]
    save_specs(tmp_path / "scaled.yaml", [spec])
    out = tmp_path / "s"
    args = ["study", "run", "--specs", str(tmp_path / "scaled.yaml"), "--out", str(out)]
    args += ["--train-size", "128", "--val-size", "128", "--batch-size", "64", "--json"]
    assert main([*args, "--time-batch", "8"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "done" and row["resolution"] == 16 and row["source"] == "scaled.yaml"
    assert row["infer_time"] > 0  # measured by trials.timing.step_time.time_model, s/image
    assert row["flops"] == complexity(spec).flops
    definition = json.loads((out / "study.json").read_text())["definition"]
    assert definition["train"]["threads"] == 1  # from --cpus-per-trial, part of the key
    assert StudyStore(out).status(row["key"])["threads"] == 1
    code = main(["study", "run", "--out", str(out), "--space", "regnetx", "--regime", "5MF"])
    assert code == 2 and "conflict" in capsys.readouterr().err


def test_embedded_local_ray_by_default(tmp_path):
    out = tmp_path / "s"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "1", *TINY]
    proc = subprocess.run(
        [sys.executable, "-m", "trials", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[1/1]" in proc.stderr and "done" in proc.stderr  # line-oriented progress
    assert "Trial" not in proc.stderr  # no Ray tables
    assert load_results(out)["status"].tolist() == ["done"]


def test_a_trial_larger_than_the_cluster_is_refused(ray_cluster, tmp_path, capsys):
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "1", *TINY]
    code = main([*args, "--out", str(tmp_path / "s"), "--gpus-per-trial", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "needs 1 CPU and 1 GPU but the cluster has 2 CPU and 0 GPU" in err
    assert not (tmp_path / "s").exists()  # refused before anything was created
    empty = tmp_path / "empty"
    StudyStore(empty).create({"source": "api"})
    assert main(["study", "show", str(empty)]) == 0
    assert "0 candidates" in capsys.readouterr().out


def test_attaching_leaves_ray_authentication_alone(ray_cluster):
    """runner.connect must not switch off a cluster's token authentication: attaching leaves
    RAY_AUTH_MODE as the user had it (here unset), whether or not the attach succeeds."""
    code = (
        "import os, sys\n"
        "from trials.study import runner\n"
        "try:\n"
        "    runner.connect(sys.argv[1])\n"
        "except Exception as exc:\n"
        "    print('refused', type(exc).__name__)\n"
        "print('RAY_AUTH_MODE' in os.environ)\n"
    )
    env = {k: v for k, v in clean_env().items() if k != "RAY_AUTH_MODE"}
    proc = subprocess.run(
        [sys.executable, "-c", code, ray_cluster.address],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.stdout.strip().splitlines()[-1] == "False", proc.stdout + proc.stderr[-1500:]


def test_a_driver_racing_on_a_new_directory_is_told_another_driver_runs_it(
    ray_cluster, tmp_path, capsys
):
    out = tmp_path / "new"
    with StudyStore(out).lock(create=True):  # the other driver, between mkdir and study.json
        code = main(["study", "run", "--space", "regnetx", "--regime", "5MF", *TINY, "--out",
                     str(out)])  # fmt: skip
        err = capsys.readouterr().err
    assert code == 2 and "being run by another driver" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == [".lock"]


def test_every_candidate_failed_exits_1_with_one_line(ray_cluster, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTSCALE_STUDY_FAULTS", "*:9")
    out = tmp_path / "s"
    code = main(["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "2", *TINY,
                 "--out", str(out), "--json"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("fastscale: error: every candidate failed (2 of 2); first failure: ")
    assert "InjectedFault" in err


def test_ctrl_c_says_what_was_kept_and_how_to_resume(ray_cluster, tmp_path):
    out = tmp_path / "s"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "2", "--epochs", "2"]
    args += [*TINY, "--out", str(out), "--address", ray_cluster.address]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trials", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    store = StudyStore(out)

    def running():
        if not (out / "study.json").exists():
            return False
        return any(store.status(k)["status"] == "running" for k in store.keys())

    try:
        assert _wait_for(running, proc, timeout=180)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("fastscale: interrupted; ") and f"kept in {out}" in last, err[-2000:]
    assert f"fastscale study run --out {out}" in last and "aborted" not in err


def test_epoch_metrics_reach_tensorboard(ray_cluster, tmp_path):
    """The driver writes every epoch's metrics under DIR/tensorboard/<key>; TensorBoard's
    own reader gets back the values the study recorded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = tiny_specs(1, seed=5)[0]
    df = run_study(tmp_path, [Candidate(spec)], tiny_config(epochs=2), progress=False)
    key = df["key"].iloc[0]
    acc = EventAccumulator(str(tmp_path / "tensorboard" / key))
    acc.Reload()
    assert {"val_error", "train_loss", "epoch_time"} <= set(acc.Tags()["scalars"])
    errors = acc.Scalars("val_error")
    assert [e.step for e in errors] == [1, 2]
    # the study's error is the best epoch's validation error
    assert min(e.value for e in errors) == pytest.approx(df["error"].iloc[0], abs=1e-6)
