"""Refusals of a bad request start no Ray process and write nothing (issue 21): the checks
run before Ray starts, before any timing or training, before anything is created."""

from __future__ import annotations

import os

import pytest
import yaml

from trials.cli import main

from .test_compare import tiny


def _refused(argv, capsys, ray_tmp, out) -> str:
    before = set(os.listdir(ray_tmp))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("fastscale: error: "), err
    assert set(os.listdir(ray_tmp)) == before, "a Ray session was started"
    assert not os.path.lexists(out), f"{out} was created"
    return err


@pytest.fixture
def ray_tmp(tmp_path, monkeypatch):
    path = tmp_path / "ray"
    path.mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return path


def test_compare_and_study_refusals_start_no_ray_and_write_nothing(tmp_path, capsys, ray_tmp):
    out = tmp_path / "cmp"
    for changes, says in (
        ({"base": {"regnety": {"model": "NoSuchNet"}}}, "unknown model 'NoSuchNet'"),
        ({"resources": {"cpus_per_trial": -1}}, "cpus_per_trial must be > 0"),
        ({"resources": {"cpus_per_trial": 4096}}, "a trial needs 4096 CPU"),
        ({"samples": "five"}, "samples must be an integer"),
    ):
        preset = tmp_path / "p.yaml"
        preset.write_text(yaml.safe_dump(tiny(**changes)))
        err = _refused(
            ["compare", "--preset", str(preset), "--out", str(out)], capsys, ray_tmp, out
        )
        assert says in err, err
    a_file = tmp_path / "file"
    a_file.write_text("")
    new = ["--space", "regnetx", "--regime", "5MF", "-n", "1"]
    for target, says in ((a_file / "study", "is not a directory"), ("/proc/fs-study", "--out")):
        err = _refused(["study", "run", "--out", str(target), *new], capsys, ray_tmp, target)
        assert says in err, err


def test_timing_refusals_come_before_any_timing(tmp_path, capsys, ray_tmp):
    out = tmp_path / "absent" / "p.json"
    err = _refused(["time", "RegNetX-200MF", "--threads", "1000"], capsys, ray_tmp, out)
    assert "--threads 1000 is more than the cores this process may use" in err
    target = "/proc/fs-calibrate/p.json"
    err = _refused(["calibrate", "RegNetX-200MF", "--out", target, "--rounds", "1"], capsys,
                   ray_tmp, target)  # fmt: skip
    assert "not writable" in err or "not a directory" in err, err
