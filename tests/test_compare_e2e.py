"""One tiny real comparison: Ray, real training on a Fashion-MNIST slice, the report, a resume
that trains nothing, and `fastscale report DIR` rebuilding from stored results."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trials.cli import main
from trials.study import StudyStore, load_results

TINY = {
    "name": "tiny",
    "dataset": "fashion-mnist",
    "resolution": 16,
    "spaces": ["regnety"],
    "base": {"regnety": {"search": 2}},
    "regimes": {"base": "0.5MF", "intermediate": "4MF", "top": "16MF"},
    "tolerance": 0.05,
    "samples": 3,
    "strategies": ["w", "dWr"],
    "seed": 3,
    "train": {"epochs": 1, "batch_size": 64, "train_size": 256, "val_size": 256, "precise_bn": 256},
    "finalists": {"epochs": 1, "seeds": [1], "select": "best-per-method", "levels": ["top"]},
    "resources": {"cpus_per_trial": 1},
}


def _compare_json(argv) -> dict:
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        assert main(argv) == 0
    return json.loads(stream.getvalue())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny comparison run once, uninterrupted: (argv, its outcome, its results and
    summary as they were right after the run), for the tests below."""
    root = tmp_path_factory.mktemp("e2e")
    preset = root / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    out = root / "cmp"
    argv = ["compare", "--preset", str(preset), "--out", str(out), "-n", "2", "--json"]
    outcome = _compare_json(argv)
    summary = json.loads((out / "summary.json").read_text())
    return argv, outcome, load_results(out), summary


@pytest.mark.slow
def test_tiny_compare_end_to_end(tiny_run, tmp_path, capsys):
    argv, outcome, _, _ = tiny_run
    out = Path(argv[argv.index("--out") + 1])
    # round A: 2 base + 2 + 2 searched; B: 2 strategies x 2 regimes + 2 hybrid; C: 3 finalists
    assert outcome["trials"] == 15
    report = out / "report.html"
    assert outcome["report"] == str(report) and report.is_file()
    assert {v["level"] for v in outcome["verdict"]} == {"intermediate", "top"}

    df = load_results(out)
    assert len(df) == 15 and (df["status"] == "done").all()
    assert df["error"].between(0, 1).all() and (df["epoch_time"] > 0).all()
    assert sorted(df["seed"].unique()) == [0, 1]  # seeds recorded: first round 0, finalists 1
    counts = df.groupby(["method", "phase"]).size().to_dict()
    assert counts == {
        ("search", "first"): 6,
        ("scaling", "first"): 4,
        ("hybrid", "first"): 2,
        ("search", "final"): 1,
        ("scaling", "final"): 1,
        ("hybrid", "final"): 1,
    }
    # hybrid models come from the best intermediate sample
    inter = df[(df["method"] == "search") & (df["level"] == "intermediate")]
    best = inter.loc[inter["error"].idxmin(), "model"]
    assert set(df[df["method"] == "hybrid"]["source"]) == {best}
    # the realised flops land in each regime's window
    first = df[df["phase"] == "first"]
    target = first["regime"].map({"0.5MF": 0.5e6, "4MF": 4e6, "16MF": 16e6})
    assert ((first["flops"] / target - 1).abs() <= 0.05).all()

    # a re-run trains nothing: every candidate is reused (attempts unchanged)
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["trials"] == 15
    df2 = load_results(out)
    merged = pd.merge(df, df2, on="key", suffixes=("", "_2"))
    assert len(merged) == 15 and (merged["attempts"] == merged["attempts_2"]).all()
    assert (merged["error"] == merged["error_2"]).all()
    meta = json.loads((out / "compare.json").read_text())
    assert len(meta["runs"]) == 2 and len(meta["keys"]) == 15

    # the report rebuilds from stored results alone
    report.unlink()
    for png in out.glob("*.png"):
        png.unlink()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"open {report}" in text and report.is_file()
    assert len(list(out.glob("*.png"))) == 4
    assert "data:image/png;base64," in report.read_text()

    # report --profile: every network priced at the resolution it trained at (a dWr-scaled
    # one grows its resolution), measured from the timing pass; the HTML gains the section
    profile_path = _tiny_profile(tmp_path)
    assert main(["report", str(out), "--profile", str(profile_path), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["epoch_time_check"]
    trained = df.drop_duplicates("model").set_index("model")["resolution"]
    assert {r["model"]: r["resolution"] for r in check["rows"]} == trained.to_dict()
    assert max(trained) > TINY["resolution"]  # the check would hide a run-wide override
    assert "timing pass" in check["measured"] and check["batch"] == meta["timing"]["batch_size"]
    assert "Epoch time: measured vs predicted" in report.read_text()


def _done_once(out) -> None:
    """Nothing trained twice to completion: each candidate's log has one `done` line."""
    store = StudyStore(out)
    for key in store.keys():
        assert store.log_path(key).read_text().count(" done: error ") == 1, key


def _decisions(summary: dict) -> list[tuple]:
    keys = ("level", "winner", "winner_strategy", "runner_up", "margin", "judgement", "z")
    return [tuple(v.get(k) for k in keys) for v in summary["verdict"]]


@pytest.mark.slow
def test_a_compare_killed_mid_round_resumes_to_the_same_report(tiny_run, ray_cluster, tmp_path):
    """The driver SIGKILLs itself when round A's third trial result arrives, before
    recording it (FASTSCALE_STUDY_KILL, trials/study/records.py); rerunning the command
    finishes the comparison without training anything twice to completion, and the results
    and verdict are those of the uninterrupted run (training is deterministic)."""
    from .test_study_ray import _wait_until_idle

    argv, outcome, reference, ref_summary = tiny_run
    preset = argv[argv.index("--preset") + 1]
    out = tmp_path / "cmp"
    args = ["compare", "--preset", preset, "--out", str(out), "-n", "2", "--json",
            "--address", ray_cluster.address]  # fmt: skip
    env = {**os.environ, "FASTSCALE_STUDY_KILL": "final:3"}
    killed = subprocess.run([sys.executable, "-m", "trials", *args], env=env,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    store = StudyStore(out)
    statuses = [store.status(k)["status"] for k in store.keys()]
    assert len(statuses) == 6 and statuses.count("done") == 2  # mid round A, third unrecorded
    _wait_until_idle(ray_cluster)  # the dead driver's trials are gone

    resumed = _compare_json(args)
    assert resumed["trials"] == outcome["trials"] == 15
    _done_once(out)
    df = load_results(out)
    merged = pd.merge(df, reference, on="key", suffixes=("", "_ref"))
    assert len(merged) == len(df) == len(reference) == 15
    assert (merged["error"] == merged["error_ref"]).all()
    assert (merged["source"].fillna("") == merged["source_ref"].fillna("")).all()
    summary = json.loads((out / "summary.json").read_text())
    assert _decisions(summary) == _decisions(ref_summary)
    assert summary["sentences"] == ref_summary["sentences"]
    assert (out / "report.html").is_file()


ASHA = {
    **TINY,
    "name": "tiny-asha",
    "strategies": ["dWr"],
    "train": {**TINY["train"], "epochs": 2, "train_size": 128},
}


@pytest.mark.slow
def test_asha_inside_compare_keeps_stopped_candidates_out(ray_cluster, tmp_path, capsys):
    """--scheduler asha (grace 1 epoch, keep the best quarter): candidates stopped after one
    epoch never become the base that is scaled, the hybrid's source or a finalist, and the
    outcome and the report count them. --profile prices the fully trained networks only."""
    preset = tmp_path / "asha.yaml"
    preset.write_text(yaml.safe_dump(ASHA))
    out = tmp_path / "cmp"
    argv = ["compare", "--preset", str(preset), "--out", str(out), "-n", "2", "--json",
            "--scheduler", "asha", "--grace-epochs", "1", "--reduction-factor", "4",
            "--profile", str(_tiny_profile(tmp_path))]  # fmt: skip
    assert main(argv) == 0
    outcome = json.loads(capsys.readouterr().out)
    df = load_results(out)
    # --profile: predicted vs measured epoch time of every fully trained network, none other
    check = outcome["epoch_time_check"]
    assert {r["model"] for r in check["rows"]} == set(df.loc[df["status"] == "done", "model"])
    assert "Epoch time: measured vs predicted" in (out / "report.html").read_text()
    stopped = df[df["status"] == "stopped"]
    assert len(stopped) >= 1, "ASHA stopped nothing: the test checks nothing"
    assert (stopped["stopped_by"] == "asha").all() and (stopped["epochs_done"] == 1).all()
    assert set(df["status"]) <= {"done", "stopped"}
    assert outcome["stopped_early"] == len(stopped)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_stopped"] == len(stopped)
    assert any(s.startswith(f"{len(stopped)} candidate") and "stopped early by ASHA" in s
               for s in summary["sentences"])  # fmt: skip
    assert f"{len(stopped)} stopped early (left out of the ranking)" in (
        (out / "report.html").read_text()
    )
    out_models = set(stopped["model"])
    first = df[(df["phase"] == "first") & (df["status"] == "done")]

    def best(**tags):
        """The lowest-error fully trained first-round model with these tags, if any."""
        rows = first
        for k, v in tags.items():
            rows = rows[rows[k] == v]
        return None if rows.empty else rows.loc[rows["error"].idxmin(), "model"]

    # the base that was scaled and the hybrid's source are the best fully trained models of
    # their populations; where ASHA stopped a whole population nothing was scaled from it
    for method, level in (("scaling", "base"), ("hybrid", "intermediate")):
        source = best(method="search", level=level)
        assert set(df.loc[df["method"] == method, "source"]) == ({source} if source else set())
    assert not set(df.loc[df["method"].isin(["scaling", "hybrid"]), "source"]) & out_models
    finals = set(df.loc[df["phase"] == "final", "model"])
    assert finals and not finals & out_models
    # every verdict ranks fully trained models only: a one-seed score is a done row's error
    done_errors = set(df.loc[df["status"] == "done", "error"])
    singles = [p for v in summary["verdict"] for p in v["picks"].values() if p["score_n"] == 1]
    assert singles and all(p["score"] in done_errors for p in singles)


def _tiny_profile(tmp_path):
    """An ops profile fitted on rows whose times follow known per-operation costs (what
    `calibrate` would write, without timing anything): enough to exercise the pricing."""
    from planner.profiles.opfit import fit_ops_profile
    from planner.profiles.opmodel import TIME_FEATURES, feature_matrix
    from spaces.op_walk import op_counts
    from spaces.registry import get_model
    from spaces.sampler import sample

    sampled = sample("regnety", 4e8, 6, 0.05, seed=1)
    specs = [rec["spec"].with_resolution(16 + 8 * (i % 3)) for i, rec in enumerate(sampled)]
    specs += [get_model("RegNetX-200MF").with_resolution(24)]
    costs = {"conv1x1.flops": 1e-10, "gconv.moved": 5e-9, "conv.flops": 2e-10,
             "bn.elems": 2e-9, "relu.elems": 1e-9, "calls": 2e-4, "step": 1e-3}  # fmt: skip
    rows = []
    for spec in specs:
        ops = op_counts(spec)
        t = float(feature_matrix(ops, 8, TIME_FEATURES, list(costs)) @ list(costs.values()))
        rows.append({"name": str(len(rows)), "spec": spec.to_dict(), "seconds_per_step": t,
                     "flops": ops.flops, "acts": ops.acts, "params": ops.params})  # fmt: skip
    path = tmp_path / "tiny-profile.json"
    fit_ops_profile(rows, batch=8, name="tiny").save(path)
    return path
