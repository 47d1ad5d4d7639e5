"""Calibration: models timed one at a time (the diverse set, or one model's scaled copies),
an `ops` profile with a memory model that the planner and `profile predict` load back."""

import json

import pytest

from planner.profiles import load_profile
from spaces.registry import get_model
from trials.cli import main
from trials.timing.calibrate import CalibrationError, calibrate, parse_factors, parse_strategies
from trials.timing.protocol import TimingProtocol


def test_calibrate_writes_a_profile_the_planner_loads(tmp_path):
    lines = []
    out = tmp_path / "prof" / "cpu.json"
    result = calibrate(
        get_model("RegNetY-200MF").with_resolution(32),
        strategies=["w", "dWr"],
        factors=[2, 4],
        batch_size=4,
        protocol=TimingProtocol(steps=2, rounds=1, min_warmup=1, max_warmup=1),
        threads=1,
        diverse=False,
        out=out,
        progress=lines.append,
    )
    # the base itself first (its own shapes are always calibrated), then its scaled copies
    assert len(result.rows) == 5 and len(lines) == 5 and lines[0].startswith("[1/5] regnet x1")
    assert lines[1].startswith("[2/5] regnet w x2")
    profile = load_profile(out)
    assert profile.n == 5 and profile.unit == "s/img" and profile.mode == "train"
    assert profile.batch == 4 and profile.kind == "ops" and profile.clock == "wall"
    assert all(r["memory_bytes"] > 0 for r in result.rows)
    # the profile prices the models it was fitted on within a sane factor
    priced = profile.price(get_model("RegNetY-200MF").with_resolution(32))
    assert priced["seconds_per_step"] > 0 and priced["memory_bytes"] > 0
    assert all(r["time"] > 0 for r in result.rows)
    # flops grow with s; the saved profile holds exactly the timed rows (seconds per step
    # over the batch of 4), in order. How close its predictions come to the timings is a
    # wall-clock figure: benchmarks/bench_calibrate.py prints it
    assert result.rows[1]["flops"] > result.rows[0]["flops"]
    assert [r["time"] for r in profile.rows] == [r["seconds_per_step"] / 4 for r in result.rows]
    assert [r["flops"] for r in profile.rows] == [r["flops"] for r in result.rows]
    assert len(result.loo_errors) == 5 and all(e >= 0 for e in result.loo_errors)
    d = result.to_dict()
    assert set(d["pearson"]) == {"acts", "flops", "params"} and d["profile"] == str(out)


def test_calibrate_minutes_per_epoch_fastest_of_rounds(tmp_path):
    lines = []
    result = calibrate(
        get_model("RegNetX-200MF").with_resolution(16),
        strategies=["w", "dwr"],
        factors=[2, 3],
        batch_size=2,
        protocol=TimingProtocol(steps=1, rounds=2, min_warmup=0, max_warmup=0),
        threads=1,
        epoch_images=60000,
        diverse=False,
        progress=lines.append,
    )
    assert result.profile.unit == "min/epoch" and result.path is None
    assert len(lines) == 10 and "round 2/2" in lines[-1]  # 5 models, each timed per round
    row = result.rows[0]
    assert row["time"] == pytest.approx(row["seconds_per_batch"] / 2 * 60000 / 60)
    assert len(row["rounds"]) == 2 and row["seconds_per_batch"] == min(row["rounds"])


def test_calibrate_cli_json_and_bad_input(tmp_path, capsys):
    out = tmp_path / "p.json"
    code = main(
        [
            "calibrate",
            "RegNetX-200MF",
            "-r",
            "16",
            "--spec-only",
            "--strategies",
            "w,dWr",
            "--factors",
            "2,4",
            "--batch-size",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--max-warmup",
            "0",
            "--rounds",
            "1",
            "--threads",
            "1",
            "--out",
            str(out),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["n"] == 5 and json.loads(out.read_text())["n"] == 5  # the base and 4 copies
    assert captured.err.count("\n") == 5  # one progress line per model
    base = get_model("RegNetX-200MF").with_resolution(16).stages()
    assert data["rows"][0]["spec"] == base.to_dict()
    assert set(data["load"]) >= {"load_before", "load_after", "cpus", "cpu_share", "busy"}
    # the planner takes the calibrated profile as is
    code = main(["plan", "RegNetX-200MF", "--target", "400MF", "--profile", str(out), "--json"])
    plans = json.loads(capsys.readouterr().out)["plans"]
    assert code == 0 and plans and all(p["predicted_runtime"] > 0 for p in plans)
    for argv, needle in (
        (["--strategies", "zz"], "unknown strategy"),
        (["--factors", "2,x"], "--factors"),
        (["--factors", "1", "--spec-only"], "at least 3"),
        (["--out", str(tmp_path)], "directory"),
        (["--out", str(tmp_path / "file" / "p.json")], "not writable"),
    ):
        (tmp_path / "file").write_text("keep")
        code = main(["calibrate", "RegNetX-200MF", "-r", "16", "--out", str(out), *argv])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "file").read_text() == "keep"


def test_parsers():
    assert parse_strategies("w, dwr ,dWr") == ["w", "dwr", "dWr"]
    assert parse_factors("1,2.5") == [1.0, 2.5]
    with pytest.raises(CalibrationError):
        parse_factors("0,2")
