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
    spreads = sorted(max(r["rounds"]) / min(r["rounds"]) - 1 for r in result.rows)
    assert result.round_spread == spreads[2]  # the median of 5
    assert any("slowest round was a median" in line for line in result.summary_lines())
    assert result.to_dict()["round_spread"] == result.round_spread


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
    assert data["round_spread"] is None  # one round: nothing to compare
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


def test_calibrate_add_prices_kinds_only_traced_models_have(tmp_path, capsys):
    """A ConvNeXt-like network (LayerNorm, GELU) added with --add is timed beside the spec's
    copies and stored as operation counts; the profile then prices a held-out ConvNeXt-like
    network of another width and resolution, which a profile fitted on the same rows without
    it refuses, naming the kinds and `calibrate --add`."""
    from planner.profiles._base import ProfileError
    from planner.profiles.opfit import fit_ops_profile
    from spaces.trace import trace_model

    out = tmp_path / "p.json"
    factory = "examples.nets:convnext_like"
    argv = ["calibrate", "RegNetX-200MF", "-r", "32", "--spec-only", "--strategies", "w"]
    argv += ["--factors", "2", "--add", factory, "--kwargs", '{"width": 8}', "--batch-size", "2"]
    argv += ["--steps", "1", "--rounds", "1", "--warmup", "0", "--max-warmup", "0"]
    code = main([*argv, "--threads", "1", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)["rows"]
    added = [r for r in rows if "ops" in r]
    # the base and its copy, then the added model at each resolution of the set (16, 24, 32)
    assert len(rows) == 5 and [r["resolution"] for r in added] == [16, 24, 32]
    want = trace_model(factory, (3, 24, 24), {"width": 8})
    assert added[1]["ops"] == {k: int(v) for k, v in want.ops.counts.items()}
    assert added[1]["traced"] == {"name": factory, "input_shape": [3, 24, 24],
                                  "kwargs": {"width": 8}}  # fmt: skip
    assert added[1]["memory_bytes"] > 0 and "spec" not in added[1]
    profile = load_profile(out)  # the schema takes rows with counts; they price again
    assert {"layernorm", "gelu"} <= set(profile.kinds)
    held_out = trace_model(factory, (3, 40, 40), {"width": 12}).ops
    priced = profile.price(held_out)
    assert priced["seconds_per_step"] > 0 and priced["memory_bytes"] > 0
    refit = fit_ops_profile(list(profile.rows), batch=2)  # saved rows fit the same profile
    assert refit.costs == pytest.approx(profile.costs, rel=1e-6, abs=1e-15)
    # the same measurements without the added rows (twice: a fit needs three rows)
    plain = fit_ops_profile([r for r in profile.rows if "ops" not in r] * 2, batch=2)
    with pytest.raises(ProfileError, match=r"no dwconv, mul, layernorm, gelu op.*--add MODEL"):
        plain.price(held_out)


def test_calibrate_add_refuses_a_model_it_cannot_trace_in_one_line(tmp_path, capsys):
    argv = ["calibrate", "RegNetX-200MF", "--spec-only", "--out", str(tmp_path / "p.json")]
    for extra, needle in (
        (
            ["--add", "examples.nets:convnext_like", "--input-shape", "3,2,2"],
            "at input shape 3x2x2",
        ),
        (["--add", "tests.trace_models:cumulative"], "no fastscale kind"),
        (["--input-shape", "3,16,16"], "apply to --add models"),
    ):
        code = main([*argv, *extra])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p.json").exists()
