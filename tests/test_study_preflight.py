"""`study run` checks every option before it creates anything or starts Ray (one line, exit
2), keeps secrets out of the study and the job entrypoint, and leaves Ray's authentication
alone. No Ray cluster is started here."""

from __future__ import annotations

import json

import pytest

from trials.cli import main
from trials.study import StudyStore
from trials.study.checkpoint_storage import redact
from trials.study.define import build_definition, reconcile, storage_url
from trials.study.jobs import entrypoint

NEW = ["--space", "regnetx", "--regime", "5MF", "-n", "1", "--resolution", "16"]


def cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def refused(argv, needle, out, capsys):
    code, _, err = cli(argv, capsys)
    assert code == 2, err
    assert err.startswith("fastscale: error:") and err.count("\n") == 1, err
    assert needle in err, err
    assert not out.exists()  # nothing created
    return err


def test_resources_dataset_and_storage_are_checked_before_anything_is_created(tmp_path, capsys):
    out = tmp_path / "new"
    run = ["study", "run", "--out", str(out), *NEW]
    cases = [
        (["--cpus-per-trial", "nan"], "--cpus-per-trial"),
        (["--gpus-per-trial", "nan"], "--gpus-per-trial"),
        (["--cpus-per-trial", "64"], "a trial needs 64 CPU"),
        (["--dataset", str(tmp_path / "nonexistent")], "nor an ImageFolder directory"),
        (["--checkpoint-storage", "nosuch://bucket/prefix"], "checkpoint storage"),
        (["--checkpoint-storage", "/proc/fastscale-nowhere"], "not writable"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((["--gpus-per-trial", "1"], "0 GPU in all"))
    for extra, needle in cases:
        refused([*run, *extra], needle, out, capsys)
    folder = tmp_path / "images"
    (folder / "train").mkdir(parents=True)
    refused([*run, "--dataset", str(folder)], "has no val/ directory", out, capsys)


def test_optuna_storage_is_checked_and_its_password_never_shown(tmp_path, capsys):
    out = tmp_path / "new"
    url = "postgresql://alice:s3cret@127.0.0.1:1/optuna"
    err = refused(
        ["study", "run", "--out", str(out), *NEW, "--sampler", "tpe", "--storage", url],
        "postgresql://alice:***@127.0.0.1:1/optuna",
        out,
        capsys,
    )
    assert "s3cret" not in err


def test_storage_password_is_stored_redacted_and_taken_from_the_environment(tmp_path, monkeypatch):
    url = "postgresql://alice:s3cret@db.example:5432/optuna"
    opts = {"space": "regnetx", "regime": 5e6, "sampler": "tpe", "storage": url}
    d = build_definition(opts, tmp_path / "s")
    assert d.storage == "postgresql://alice:***@db.example:5432/optuna"
    assert "s3cret" not in json.dumps(d.to_dict())
    # resume: the full URL is restated, or comes from the environment
    assert storage_url(reconcile(d.to_dict(), {"storage": url}, tmp_path), {"storage": url}) == url
    monkeypatch.delenv("FASTSCALE_OPTUNA_STORAGE", raising=False)
    with pytest.raises(Exception, match="FASTSCALE_OPTUNA_STORAGE"):
        storage_url(d, {})
    monkeypatch.setenv("FASTSCALE_OPTUNA_STORAGE", url)
    assert storage_url(d, {}) == url
    monkeypatch.setenv("FASTSCALE_OPTUNA_STORAGE", url.replace("db.example", "other"))
    with pytest.raises(Exception, match="does not match"):
        storage_url(d, {})
    # the Ray Jobs entrypoint carries the redacted form only
    assert "s3cret" not in entrypoint({"storage": url, "out": "/x"})
    assert redact("s3://b/p?secret_key=abc&region=x") == "s3://b/p?secret_key=***&region=x"


def test_a_second_driver_is_refused_without_writing(tmp_path, capsys):
    study = tmp_path / "study"
    definition = {"source": "search", "space": "regnetx", "regime": 5_000_000, "n": 1,
                  "tolerance": 0.01, "seed": 0, "sampler": "random", "storage": None,
                  "train": {"dataset": "fashion-mnist", "resolution": 16}}  # fmt: skip
    store = StudyStore(study)
    store.create(definition)
    with store.lock():
        before = sorted((p.name, p.stat().st_mtime_ns) for p in study.rglob("*"))
        code, _, err = cli(["study", "run", "--out", str(study)], capsys)
        after = sorted((p.name, p.stat().st_mtime_ns) for p in study.rglob("*"))
    assert code == 2 and "being run by another driver" in err and err.count("\n") == 1
    assert after == before
