"""Study store, keys, results table, definitions and bad input: real files, no Ray."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from spaces.sampler import DesignSpace, sample
from trials.cli import main
from trials.study import StudyBusy, StudyError, StudyStore, candidate_key, load_results
from trials.study.jobs import entrypoint, run_argv
from trials.study.results import write_results
from trials.study.trainable import injected_failure, parse_faults
from trials.training.recipe import TrainConfig


@pytest.fixture(scope="module")
def specs():
    space = DesignSpace.named("regnetx", resolution=16, fixed={"num_classes": 10, "in_channels": 1})
    return [d["spec"] for d in sample(space, 5e6, n=3, seed=0)]


def train_dict(**kw):
    return TrainConfig(epochs=1, train_size=64, resolution=16, **kw).to_dict()


def test_key_depends_on_spec_and_recipe_but_not_on_execution(specs):
    a, b = specs[0].to_dict(), specs[1].to_dict()
    base = train_dict()
    assert candidate_key(a, base) == candidate_key(dict(reversed(a.items())), base)
    assert candidate_key(a, base) != candidate_key(b, base)
    assert candidate_key(a, base) != candidate_key(a, train_dict(seed=1))
    assert candidate_key(a, base) != candidate_key(a, train_dict(base_lr=1.0))
    runtime = {**base, "device": "cuda", "num_workers": 3}
    assert candidate_key(a, base) == candidate_key(a, runtime)
    assert len(candidate_key(a, base)) == 12
    # torch threads change a CPU run's result: a set thread count is part of the key
    assert candidate_key(a, train_dict(threads=1)) != candidate_key(a, train_dict(threads=2))
    assert candidate_key(a, train_dict(threads=1)) != candidate_key(a, base)
    assert base["threads"] is None  # unset (older studies): their keys are unchanged
    assert candidate_key(a, base) == candidate_key(
        a, {k: v for k, v in base.items() if k != "threads"}
    )


def test_add_is_idempotent_and_never_rewrites(tmp_path, specs):
    store = StudyStore(tmp_path / "s")
    store.create({"source": "api"})
    key = store.add(specs[0], train_dict(), {"method": "search"})
    cand = store.cdir(key) / "candidate.json"
    before = (cand.read_bytes(), cand.stat().st_mtime_ns)
    time.sleep(0.01)
    assert store.add(specs[0], train_dict(), {"method": "search"}) == key
    assert (cand.read_bytes(), cand.stat().st_mtime_ns) == before
    store.add(specs[0], train_dict(), {"method": "hybrid"})  # same model, second label set
    assert store.tag_sets(key) == [{"method": "search"}, {"method": "hybrid"}]
    assert store.keys() == [key]
    assert store.status(key) == {
        "status": "pending",
        "attempts": 0,
        "failures": 0,
        "epochs_done": 0,
    }


def test_torn_status_reads_pending_and_writes_leave_no_temp_files(tmp_path, specs):
    store = StudyStore(tmp_path)
    store.create({"source": "api"})
    key = store.add(specs[0], train_dict())
    (store.cdir(key) / "status.json").write_text('{"status": "do')  # a torn write
    assert store.status(key)["status"] == "pending"
    store.write_status(key, {"status": "done", "attempts": 1, "failures": 0, "error": 0.5})
    assert store.status(key)["error"] == 0.5
    assert sorted(p.name for p in store.cdir(key).iterdir()) == [
        "candidate.json",
        "status.json",
        "tags.json",
    ]


def test_crash_is_recorded_once_for_a_running_attempt(tmp_path, specs):
    store = StudyStore(tmp_path)
    store.create({"source": "api"})
    key = store.add(specs[0], train_dict())
    store.write_status(key, {"status": "running", "attempts": 1, "failures": 0})
    rec = store.record_crash(key, "worker killed")
    assert (rec["status"], rec["failures"], rec["failure"]) == ("failed", 1, "worker killed")
    assert store.record_crash(key, "again")["failures"] == 1  # no longer running: unchanged
    assert store.is_finished(key, max_failures=1)
    assert not store.is_finished(key, max_failures=2)


def test_foreign_corrupted_and_newer_dirs_are_refused_untouched(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(StudyError, match="not a study directory"):
        StudyStore(foreign).open()
    with pytest.raises(StudyError, match="not empty"):
        StudyStore(foreign).create({})
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "study.json").write_text("{not json")
    with pytest.raises(StudyError, match="corrupted"):
        StudyStore(bad).check()
    (bad / "study.json").write_text(json.dumps({"magic": "something-else"}))
    with pytest.raises(StudyError, match="not a fastscale study"):
        StudyStore(bad).check()
    (bad / "study.json").write_text(json.dumps({"magic": "fastscale-study", "version": 99}))
    with pytest.raises(StudyError, match="version 99"):
        StudyStore(bad).check()


def test_one_driver_at_a_time(tmp_path):
    store = StudyStore(tmp_path)
    store.create({"source": "api"})
    with store.lock():
        with pytest.raises(StudyBusy, match="another driver"):
            with StudyStore(tmp_path).lock():
                pass
    with store.lock():  # released
        pass


def test_results_rows_from_records(tmp_path, specs):
    store = StudyStore(tmp_path)
    store.create({"source": "api"})
    k0 = store.add(specs[0], train_dict(), {"strategy": "dWr", "status": "x"})
    k1 = store.add(specs[1], train_dict())
    k2 = store.add(specs[2], train_dict())
    store.write_status(
        k0,
        {"status": "done", "attempts": 2, "failures": 1, "error": 0.25, "flops": 11,
         "params": 22, "acts": 33, "epoch_time": 1.5, "node": "n1", "epochs_done": 1},
    )  # fmt: skip
    store.write_status(
        k2, {"status": "failed", "attempts": 1, "failures": 1, "failure": "TrainingDiverged: nan"}
    )
    write_results(store)
    df = load_results(tmp_path).set_index("key")
    assert set(df.index) == {k0, k1, k2}
    assert df.loc[k0, "error"] == 0.25 and df.loc[k0, "flops"] == 11
    assert df.loc[k0, "strategy"] == "dWr" and df.loc[k0, "tag_status"] == "x"
    assert df.loc[k1, "status"] == "pending"
    # a pending row shows the analytic complexity of the model as it will be trained
    from spaces.complexity import complexity

    assert df.loc[k1, "flops"] == complexity(specs[1]).flops
    assert df.loc[k2, "failure"] == "TrainingDiverged: nan"
    for col in ("depth", "w0", "wa", "wm", "group_width", "resolution", "attempts", "node"):
        assert col in df.columns
    import pandas as pd

    stored = pd.read_parquet(tmp_path / "results.parquet").set_index("key")
    assert stored.loc[k0, "error"] == 0.25


def test_study_files_follow_the_umask_like_every_other_output(tmp_path, specs):
    """study.json, status records and results.parquet are 0666 & ~umask (0644 under 022),
    as every other fastscale output, not mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        store = StudyStore(tmp_path / "s")
        store.create({"source": "api"})
        key = store.add(specs[0], train_dict())
        store.write_status(key, {"status": "failed", "attempts": 1, "failure": "x"})
        results = write_results(store)
    finally:
        os.umask(old)
    for path in (store.definition_path, store.cdir(key) / "status.json", results):
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o644), path
    assert not [p for p in (tmp_path / "s").rglob(".*tmp-*")]


def test_fault_spec_parsing():
    faults = parse_faults("abc:2, *:1,def::exit")
    assert faults == {"abc": (2, "raise"), "*": (1, "raise"), "def": (1, "exit")}
    assert injected_failure(faults, "abcdef", 2) == "raise"
    assert injected_failure(faults, "abcdef", 3) is None
    assert injected_failure(faults, "zzz", 1) == "raise"
    assert injected_failure(parse_faults(""), "abc", 1) is None


def test_submit_entrypoint_is_quoted_argv():
    opts = {"space": "regnetx", "regime": 20_000_000, "n": 8, "out": "/runs/a b; rm -rf /",
            "storage": None, "json": False, "flag": True}  # fmt: skip
    argv = run_argv(opts)
    assert argv[:3] == ["fastscale", "study", "run"]
    assert "--storage" not in argv and "--json" not in argv and "--flag" in argv
    assert shlex.split(entrypoint(opts)) == argv  # one token per value, no shell injection


# -- CLI bad input: one line, exit 2, nothing created or changed -----------------------------
def cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_rejects_bad_input_with_one_line(tmp_path, capsys):
    out = tmp_path / "new"
    cases = [
        (["--space", "regnetx", "--regime", "5MF", "--sampler", "grid"], "--sampler"),
        (["--regime", "5MF"], "needs --space"),
        (["--space", "regnetx", "--regime", "5MF", "--storage", "sqlite:///x.db"], "--storage"),
        (["--space", "regnetx", "--regime", "5MF", "--address", "127.0.0.1:1"], "cannot reach"),
    ]
    for extra, needle in cases:
        code, _, err = cli(["study", "run", "--out", str(out), *extra], capsys)
        assert code == 2, extra
        assert err.count("\n") == 1 and err.startswith("fastscale: error:") and needle in err
        assert not out.exists()


def test_cli_refuses_foreign_and_conflicting_dirs(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("1,2\n")
    code, _, err = cli(["study", "run", "--out", str(foreign), "--space", "regnetx",
                        "--regime", "5MF"], capsys)  # fmt: skip
    assert code == 2 and "not a study directory" in err
    assert [p.name for p in foreign.iterdir()] == ["data.csv"]
    code, _, err = cli(["study", "show", str(foreign)], capsys)
    assert code == 2 and "not a study directory" in err

    study = tmp_path / "study"
    definition = {"source": "search", "space": "regnetx", "regime": 5_000_000, "n": 2,
                  "tolerance": 0.01, "seed": 0, "sampler": "random", "storage": None,
                  "train": train_dict()}  # fmt: skip
    StudyStore(study).create(definition)
    before = (study / "study.json").read_bytes()
    for extra, needle in [
        (["--regime", "40MF"], "--regime 40MF conflicts with the study in"),
        (["--space", "regnety"], "stored: regnetx"),
        (["--epochs", "3"], "--epochs 3 conflicts"),
        (["--seed", "5"], "--seed 5 conflicts"),
        (["--sampler", "tpe"], "--sampler tpe conflicts"),
    ]:
        code, _, err = cli(["study", "run", "--out", str(study), *extra], capsys)
        assert code == 2 and needle in err and err.count("\n") == 1, (extra, err)
    assert "stored: 5MF" in cli(["study", "run", "--out", str(study), "--regime", "6MF"], capsys)[2]
    assert (study / "study.json").read_bytes() == before
    assert sorted(p.name for p in study.iterdir()) == ["candidates", "logs", "study.json"]


def test_submit_and_status_fail_fast_on_unreachable_dashboard(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ""}
    for args in (
        ["study", "submit", "--address", "http://127.0.0.1:1", "--out", str(tmp_path / "s"),
         "--space", "regnetx", "--regime", "5MF"],
        ["study", "status", "raysubmit_123", "--address", "http://127.0.0.1:1"],
        ["study", "logs", "raysubmit_123", "--address", "127.0.0.1:8265"],
    ):  # fmt: skip
        proc = subprocess.run(  # a hang fails the test through the timeout
            [sys.executable, "-m", "trials", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("fastscale: error:")
    assert not (tmp_path / "s").exists()


def test_progress_view_lines_and_live_rendering():
    import io

    from trials.study.live_view import StudyView

    stream = io.StringIO()  # not a terminal: one line per finished trial
    view = StudyView(total=3, done=1, stream=stream)
    view.start("aaa", "X d16", 1)
    view.start("bbb", "X d20", 2)
    view.epoch("aaa", {"epoch": 1, "epochs": 2, "val_error": 0.5})
    live = view._render().plain  # what a terminal shows, redrawn in place
    assert "1/3 trainings finished" in live and "2 running" in live
    assert "aaa  X d16  try 1  epoch 1/2  val error 0.5000" in live
    assert "bbb  X d20  try 2  starting" in live
    # off a terminal: one announcement of the work, then epochs alone print nothing
    assert stream.getvalue() == (
        "study: 2 of 3 trainings to run (1 already finished); one line per finished training "
        "follows\n"
    )
    view.finish("aaa", "X d16", {"status": "done", "error": 0.25, "epoch_time": 1.5}, True)
    view.finish("bbb", "X d20", {"status": "failed", "attempts": 2, "failure": "Boom"}, False)
    lines = stream.getvalue().splitlines()[1:]
    assert lines[0].startswith("[2/3] aaa X d16  done  error 0.2500  epoch_time 1.50s  ETA")
    assert lines[1].startswith("[2/3] bbb X d20  FAILED attempt 2 (will retry): Boom")
    assert len(lines) == 2 and view.running == {}
