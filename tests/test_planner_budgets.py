"""`plan` at the user's batch and resolution, relative budgets, the one recommended plan, and
the warning when a profile is asked outside the range it was calibrated on."""

import dataclasses
import json

import numpy as np
import pytest

from planner.budgets import PlanError, Relative, parse_budget
from planner.plan import plan
from planner.profiles import load_profile
from planner.profiles.coverage import calibrated_range, coverage_warning
from planner.profiles.opfit import fit_ops_profile
from planner.profiles.opmodel import MEMORY_FEATURES, TIME_FEATURES, feature_matrix
from planner.scale import scale_spec
from spaces.op_walk import op_counts
from spaces.registry import get_model
from spaces.sampler import sample
from spaces.specs import spec_from_dict
from trials.cli import main

BATCH = 8


@pytest.fixture(scope="module")
def ops_profile(tmp_path_factory):
    """An `ops` profile fitted on exact synthetic costs of a small diverse set (32–64 px)."""
    specs = []
    for i, space in enumerate(("regnetx", "regnety", "regnetz")):
        for j, rec in enumerate(sample(space, 400e6, 3, 0.05, seed=i)):
            specs.append(rec["spec"].with_resolution((32, 48, 64)[j]))
    y = get_model("RegNetY-200MF").with_resolution(48)
    specs += [scale_spec(y, s, 3) for s in ("w", "d", "dwr")]
    time_costs = {"conv.flops": 2e-10, "gconv.flops": 4e-10, "elems": 3e-9, "calls": 1e-4}
    mem_costs = {"conv.outputs": 4.0, "bn.elems": 4.0, "params": 12.0, "step": 1e6}
    rows = []
    for spec in specs:
        ops = op_counts(spec)
        t = feature_matrix(ops, BATCH, TIME_FEATURES, list(time_costs)) @ list(time_costs.values())
        m = feature_matrix(ops, BATCH, MEMORY_FEATURES, list(mem_costs)) @ list(mem_costs.values())
        rows.append({"name": str(len(rows)), "spec": spec.to_dict(), "seconds_per_step": float(t),
                     "memory_bytes": float(m), "flops": ops.flops, "acts": ops.acts,
                     "params": ops.params, "resolution": spec.resolution})  # fmt: skip
    prof = fit_ops_profile(rows, batch=BATCH, name="synthetic")
    prof = dataclasses.replace(prof, calibrated_range=calibrated_range(prof))
    path = tmp_path_factory.mktemp("prof") / "synthetic.json"
    prof.save(path)
    return path


def _base():
    return get_model("RegNetY-200MF")


def test_memory_and_runtime_are_priced_at_the_asked_batch(ops_profile):
    prof = load_profile(ops_profile)
    at_own = plan(_base(), "800MF", profile=prof, alphas=[0.8], strategies=[])
    at_64 = plan(_base(), "800MF", profile=prof, alphas=[0.8], strategies=[], batch=64)
    assert at_own.attrs["batch"] == BATCH and at_64.attrs["batch"] == 64
    spec = spec_from_dict(at_64.loc[0, "spec"])
    priced = prof.price(spec, 64)
    assert at_64.loc[0, "predicted_memory"] == pytest.approx(float(priced["memory_bytes"]))
    assert at_64.loc[0, "predicted_runtime"] == pytest.approx(float(priced["runtime"]))
    assert at_64.loc[0, "predicted_memory"] > 4 * at_own.loc[0, "predicted_memory"] * 0.9


def test_resolution_trains_the_base_at_that_size(ops_profile):
    df = plan(_base(), "800MF", alphas=[0.8], strategies=[], resolution=160)
    assert df.attrs["base_resolution"] == 160 and df.attrs["base_flops"] < 200e6


def test_relative_budgets_resolve_against_the_best_on_target_plan():
    df = plan(_base(), "800MF", profile="v100x8-paper", include_all=True)
    on = df[df["on_target"]]
    fastest = on["predicted_runtime"].min()
    kept = plan(_base(), "800MF", profile="v100x8-paper", max_runtime="1.05x")
    assert kept.attrs["budgets"]["max_runtime"] == pytest.approx(1.05 * fastest)
    assert kept.attrs["relative"]["max_runtime"]["reference"] == pytest.approx(fastest)
    assert (kept["predicted_runtime"] <= 1.05 * fastest + 1e-12).all()
    assert 0 < len(kept) < len(on)
    smallest = on["acts"].min()
    kept = plan(_base(), "800MF", max_acts="1.1x")
    assert (kept["acts"] <= 1.1 * smallest).all() and len(kept) < len(on)


def test_budget_parsing_forms_and_errors():
    assert parse_budget("1.5x", "max_runtime") == Relative(1.5)
    assert parse_budget("1.2×", "max_memory") == Relative(1.2)
    assert parse_budget("12GB", "max_memory") == 12e9
    assert parse_budget("28M", "max_acts") == 28e6
    for bad, key in (("0x", "max_runtime"), ("fastx", "max_acts"), ("-1", "max_runtime")):
        with pytest.raises(PlanError):
            parse_budget(bad, key)
    with pytest.raises(PlanError, match="smallest on-target plan"):
        plan(_base(), "800MF", max_acts="0.5x")


def test_recommendation_is_the_fastest_plan_in_the_accuracy_safe_range():
    df = plan(get_model("RegNetY-4.0GF"), "16GF", profile="v100x8-paper")
    rec = df.attrs["recommendation"]
    safe = df[df["tier"] == 0]
    best = safe.loc[safe["predicted_runtime"].idxmin()]
    assert rec["strategy"] == best["strategy"] and rec["rank"] == best["rank"]
    assert "no budget given" in rec["why"]
    # every tier-0 plan fits a generous budget: the line says the budgets exclude nothing
    df = plan(get_model("RegNetY-4.0GF"), "16GF", profile="v100x8-paper", max_runtime="3x")
    assert "exclude none" in df.attrs["recommendation"]["why"]
    # a budget that leaves no safe plan: the top plan that fits, and the line says why
    df = plan(get_model("RegNetY-4.0GF"), "16GF", max_acts="1.02x")
    rec = df.attrs["recommendation"]
    assert rec["rank"] == 1 and "no plan in the accuracy-safe range fits" in rec["why"]


def test_recommendation_follows_the_schedule_rule_with_epochs():
    df = plan(get_model("ResNet-RS-50"), "16GF", epochs=350)
    rec = df.attrs["recommendation"]
    assert rec["rank"] == 1 and rec["strategy"] == df.loc[0, "strategy"] == "d"
    assert "350 epochs" in rec["why"] and "depth" in rec["why"]


def test_scaling_down_drops_degenerate_rows(capsys):
    df = plan(get_model("RegNetY-4.0GF"), "400MF", include_all=True)
    assert df.attrs["scaled_down"] and df.attrs["degenerate"] == ["d"]
    assert (df["s"] > 1e-6 * 1.01).all()
    assert main(["plan", "RegNetY-4.0GF", "--target", "400MF", "--all"]) == 0
    out = capsys.readouterr().out
    assert "scaling down" in out and "dropped d" in out


def test_coverage_warning_names_what_is_outside_and_the_command(ops_profile):
    prof = load_profile(ops_profile)
    rng = calibrated_range(prof)
    assert rng["batch"] == BATCH and rng["resolutions"] == [32, 64]
    assert coverage_warning(prof, batch=BATCH, resolutions=[48], widths=[rng["widths"][1]]) is None
    line = coverage_warning(prof, batch=64, resolutions=[224, 240], widths=[4096], spec_ref="X")
    assert "\n" not in line and "batch 64 (calibrated at 8)" in line
    assert "resolution 224–240px" in line and "widths" in line
    assert "`fastscale calibrate X --batch-size 64 --resolution 240 --out PROFILE`" in line
    noisy = dataclasses.replace(prof, calibrated_range={**rng, "held_out": {
        "time_mean_rel_error": 0.14}})  # fmt: skip
    line = coverage_warning(noisy, batch=BATCH, resolutions=[48])
    assert "held-out error 14% (time) above 10%" in line and "--rounds 5" in line


def test_old_profiles_without_the_record_still_load_and_warn_from_rows(ops_profile, tmp_path):
    data = json.loads(ops_profile.read_text())
    data.pop("calibrated_range")
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    prof = load_profile(old)
    assert prof.calibrated_range == {} and calibrated_range(prof)["resolutions"] == [32, 64]
    assert "batch 64" in coverage_warning(prof, batch=64)
    data["rows"] = []  # nothing to derive a range from: "range unknown", no warning
    old.write_text(json.dumps(data))
    assert coverage_warning(load_profile(old), batch=64, resolutions=[999]) is None


def test_plan_cli_warns_in_one_line_and_json_carries_the_answer(ops_profile, capsys):
    argv = ["plan", "RegNetY-200MF", "--target", "800MF", "--profile", str(ops_profile),
            "--batch-size", "64", "--max-runtime", "1.5x", "--max-memory", "1.2x"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    cap = capsys.readouterr()
    data = json.loads(cap.out)
    assert data["batch"] == 64 and "batch 64" in data["figures"]
    assert data["budgets_asked"] == {"max_runtime": "1.5x", "max_memory": "1.2x"}
    assert data["recommendation"]["rank"] in [p["rank"] for p in data["plans"]]
    warnings = [line for line in cap.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "batch 64 (calibrated at 8)" in warnings[0]
    assert data["warnings"] and "--batch-size 64" in data["warnings"][0]
    mem = np.array([p["predicted_memory"] for p in data["plans"]])
    assert (mem <= data["budgets"]["max_memory"]).all()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "memory/step (batch 64)" in out and "at batch 64" in out
    assert out.strip().splitlines()[-1].startswith("take: #")


def test_profile_predict_warns_outside_the_range(ops_profile, capsys):
    argv = ["profile", "predict", str(ops_profile), "RegNetY-200MF", "-r", "48"]
    assert main([*argv, "--batch-size", str(BATCH)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main([*argv, "--batch-size", "64"]) == 0
    err = capsys.readouterr().err
    assert err.count("fastscale: warning:") == 1 and "--batch-size 64" in err


def test_profile_show_says_where_it_was_calibrated(ops_profile, capsys):
    assert main(["profile", "show", str(ops_profile)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "calibrated on" in x)
    assert "batch 8" in line and "32–64 px" in line


def test_profile_predict_of_a_traced_model_suggests_calibrate_add(ops_profile, capsys):
    """A traced model outside the range: the command that would cover it times it too."""
    factory = "tests.trace_models:plain_convnet"
    argv = ["profile", "predict", str(ops_profile), factory, "--input-shape", "3,48,48"]
    assert main([*argv, "--batch-size", "64"]) == 0
    err = capsys.readouterr().err
    assert err.count("fastscale: warning:") == 1
    assert f"`fastscale calibrate --add {factory} " in err and "--batch-size 64" in err
