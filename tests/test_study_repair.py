"""A damaged study: `show` skips what is damaged with a warning line, `study repair` rebuilds
study.json from restated options, statuses from the checkpoint storage, quarantines what
cannot be rebuilt, and never deletes a trained result. Real files and a real (tiny) trial
run through the trial function, its reports persisted as Tune would (copied into
<storage>/<experiment>/<key>-<trial>/checkpoint_NNNNNN)."""

from __future__ import annotations

import json
import shutil

import pytest

from spaces.sampler import DesignSpace, sample
from trials.cli import main
from trials.study import StudyStore
from trials.study.define import build_definition
from trials.study.results import write_results
from trials.study.store import canonical
from trials.study.trainable import run_trial

OPTS = {"space": "regnetx", "regime": 5e6, "n": 3, "resolution": 16, "epochs": 1,
        "train_size": 64, "val_size": 64, "batch_size": 32}  # fmt: skip
FLAGS = ["--space", "regnetx", "--regime", "5MF", "-n", "3", "--resolution", "16", "--epochs",
         "1", "--train-size", "64", "--val-size", "64", "--batch-size", "32"]  # fmt: skip


def cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-candidate study: one trained to done (its final record in the storage)."""
    root = tmp_path_factory.mktemp("trained") / "study"
    d = build_definition(dict(OPTS), root)
    store = StudyStore(root)
    store.create(d.to_dict())
    space = DesignSpace.named("regnetx", resolution=16, fixed={"num_classes": 10, "in_channels": 1})
    keys = [store.add(x["spec"], d.train) for x in sample(space, 5e6, n=3, seed=0)]
    trial = root / "ray" / "run-x" / f"{keys[0]}-t0"
    index = iter(range(100))

    def persist(metrics, directory):  # what Tune does with a reported checkpoint
        shutil.copytree(directory, trial / f"checkpoint_{next(index):06d}")

    cand = store.candidate(keys[0])
    config = {"key": keys[0], "candidate": canonical({"spec": cand["spec"], "train": cand["train"]}),
              "attempt": 1, "cpus": 1, "gpus": 0}  # fmt: skip
    rec = run_trial(config, persist)
    assert rec["status"] == "done"
    store.write_status(keys[0], {**rec, "attempts": 1, "failures": 0})
    write_results(store)
    return root, keys, rec


def copy(trained, tmp_path):
    root, keys, rec = trained
    dst = tmp_path / "study"
    shutil.copytree(root, dst)
    return dst, keys, rec


def test_show_skips_a_damaged_candidate_with_a_warning(trained, tmp_path, capsys):
    root, keys, _ = copy(trained, tmp_path)
    (root / "candidates" / keys[1] / "candidate.json").write_text("{broken")
    (root / "candidates" / keys[2] / "status.json").write_text(
        json.dumps({"status": "done", "attempts": "x"})
    )
    code, out, err = cli(["study", "show", str(root), "--json"], capsys)
    assert code == 0, err
    assert [r["key"] for r in json.loads(out)] == [keys[0]]
    warnings = err.strip().splitlines()
    assert len(warnings) == 2 and all(
        w.startswith("fastscale: warning: skipping") for w in warnings
    )
    assert "study repair" in warnings[0]


def test_repair_rebuilds_definition_and_statuses_and_quarantines(trained, tmp_path, capsys):
    root, keys, rec = copy(trained, tmp_path)
    (root / "study.json").write_text('{"magic": "fastscale-st')  # truncated
    (root / "candidates" / keys[0] / "status.json").unlink()  # the trained one's record
    (root / "candidates" / keys[1] / "candidate.json").write_text("{broken")
    (root / "results.parquet").unlink()
    code, _, err = cli(["study", "show", str(root)], capsys)
    assert code == 2 and "corrupted" in err
    code, _, err = cli(["study", "repair", str(root)], capsys)
    assert code == 2 and "restate the study's options" in err and err.count("\n") == 1
    code, _, err = cli(["study", "repair", str(root), *FLAGS[:-2], "--batch-size", "64"], capsys)
    assert code == 2 and "batch_size" in err  # a recipe the candidates were not trained with
    code, out, err = cli(["study", "repair", str(root), *FLAGS], capsys)
    assert code == 0, err
    assert "study.json rebuilt" in out and f"quarantined {keys[1]}" in out
    assert f"status of {keys[0]} rebuilt as done" in out
    quarantined = list((root / "quarantine").iterdir())
    assert any(p.name.startswith(keys[1]) and (p / "REASON.txt").exists() for p in quarantined)
    assert any(p.name.startswith("study.json") for p in quarantined)  # kept, not deleted
    code, out, err = cli(["study", "show", str(root), "--json"], capsys)
    assert code == 0 and err == ""
    rows = {r["key"]: r for r in json.loads(out)}
    assert set(rows) == {keys[0], keys[2]} and (root / "results.parquet").exists()
    assert rows[keys[0]]["status"] == "done" and rows[keys[0]]["error"] == rec["error"]
    assert rows[keys[2]]["status"] == "pending"
