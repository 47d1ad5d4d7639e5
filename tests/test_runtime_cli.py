"""`fastscale calibrate` (the diverse set) → `profile predict` / `profile show` /
`plan --max-memory`: JSON contracts and bad input (one line, exit 2)."""

import json

import pytest

from trials.cli import main


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def ops_profile(tmp_path_factory):
    """A tiny real calibration of the diverse set: 16 px, batch 2, one timed step each."""
    out = tmp_path_factory.mktemp("profile") / "tiny.json"
    argv = ["calibrate", "-r", "16", "--batch-size", "2", "--repeats", "1", "--warmup", "0", "--max-warmup", "0",
            "--rounds", "1", "--threads", "1", "--clock", "cpu", "--out", str(out),
            "--json"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_calibrate_without_spec_times_the_diverse_set(ops_profile, capsys):
    code, out, _ = _run(capsys, ["profile", "show", str(ops_profile), "--json"])
    prof = json.loads(out)
    assert code == 0 and prof["kind"] == "ops" and prof["batch"] == 2 and prof["clock"] == "cpu"
    families = {r["family"] for r in prof["rows"]}
    assert families == {"regnetx", "regnety", "regnetz", "efficientnet", "resnet"}
    assert {"gconv", "dwconv", "relu", "silu", "se", "maxpool"} <= set(prof["kinds"])
    assert prof["fit"]["memory"]["n"] == len(prof["rows"]) >= 15
    code, out, _ = _run(capsys, ["profile", "show", str(ops_profile)])
    assert code == 0 and "ops (per-operation costs" in out and "memory" in out
    code, out, _ = _run(capsys, ["profile", "show", "v100x8-paper"])
    assert code == 0 and "linear (time = c0" in out


def test_profile_predict_json_contract(ops_profile, capsys):
    argv = ["profile", "predict", str(ops_profile), "RegNetY-400MF", "EfficientNet-B0",
            "-r", "32", "--json"]  # fmt: skip
    code, out, _ = _run(capsys, argv)
    records = json.loads(out)
    assert code == 0 and [r["name"] for r in records] == ["RegNetY-400MF", "EfficientNet-B0"]
    for r in records:
        assert {"name", "flops", "acts", "seconds_per_image", "seconds_per_step",
                "memory_bytes", "unit"} <= set(r)  # fmt: skip
        assert r["unit"] == "s/img" and r["batch"] == 2 and r["resolution"] == 32
        assert r["seconds_per_step"] == pytest.approx(2 * r["seconds_per_image"])
        assert r["memory_bytes"] > 0
        assert r["memory_bytes_per_image"] == pytest.approx(r["memory_bytes"] / 2)
    code, out, _ = _run(capsys, ["profile", "predict", str(ops_profile), "RegNetY-400MF",
                                 "-r", "32", "--batch-size", "8", "--json"])  # fmt: skip
    bigger = json.loads(out)
    assert code == 0 and isinstance(bigger, dict) and bigger["batch"] == 8
    assert bigger["memory_bytes"] > records[0]["memory_bytes"]
    code, out, _ = _run(capsys, ["profile", "predict", "v100x8-paper", "RegNetY-4.0GF", "--json"])
    paper = json.loads(out)
    assert code == 0 and paper["unit"] == "min/epoch" and paper["memory_bytes"] is None
    assert paper["runtime"] > 0
    code, out, _ = _run(capsys, ["profile", "predict", str(ops_profile), "RegNetX-200MF"])
    assert code == 0 and "RegNetX-200MF" in out and "memory/step" in out


def test_plan_with_memory_budget(ops_profile, capsys):
    base = ["plan", "RegNetY-200MF", "--target", "800MF", "--profile", str(ops_profile)]
    code, out, _ = _run(capsys, [*base, "--json"])
    plans = json.loads(out)["plans"]
    assert code == 0 and all(
        p["predicted_memory"] > 0 and p["predicted_runtime"] > 0 for p in plans
    )
    middle = sorted(p["predicted_memory"] for p in plans)[len(plans) // 2]
    code, out, _ = _run(capsys, [*base, "--max-memory", str(int(middle)), "--json"])
    kept = json.loads(out)["plans"]
    assert code == 0 and 0 < len(kept) < len(plans)
    assert all(p["predicted_memory"] <= middle for p in kept)
    code, out, _ = _run(capsys, [*base, "--max-memory", "12GB"])
    assert code == 0 and "memory/step (batch 2)" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["profile", "predict", "nope.json", "RegNetX-200MF"], "unknown profile"),
        (["profile", "predict", "v100x8-paper", "NoSuchNet"], "unknown model"),
        (["profile", "predict", "v100x8-paper", "RegNetX-200MF", "-r", "4"], "--resolution"),
        (["plan", "RegNetY-200MF", "--target", "800MF", "--max-memory", "12GB"], "memory model"),
        (
            [
                "plan",
                "RegNetY-200MF",
                "--target",
                "800MF",
                "--max-memory",
                "12GB",
                "--profile",
                "v100x8-paper",
            ],
            "'v100x8-paper' (linear) has none",
        ),  # fmt: skip
        (["calibrate", "--spec-only", "--out", "x.json"], "needs a SPEC"),
    ],
)
def test_bad_input_is_one_line(argv, needle, capsys):
    code, _, err = _run(capsys, argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_bad_memory_budget_and_unpriceable_kinds(ops_profile, tmp_path, capsys):
    base = ["plan", "RegNetY-200MF", "--target", "800MF", "--profile", str(ops_profile)]
    code, _, err = _run(capsys, [*base, "--max-memory", "12XB"])
    assert code == 2 and "not a size" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, [*base, "--max-memory", "1MB"])
    assert code == 2 and "--max-memory (max_memory) 1.0MB: the smallest on-target plan, " in err
    # a profile whose calibration never ran a depthwise conv cannot price an EfficientNet
    prof = json.loads(ops_profile.read_text())
    prof["kinds"] = [k for k in prof["kinds"] if k != "dwconv"]
    narrow = tmp_path / "narrow.json"
    narrow.write_text(json.dumps(prof))
    code, _, err = _run(capsys, ["profile", "predict", str(narrow), "EfficientNet-B0"])
    assert code == 2 and "dwconv" in err and "calibrate" in err
    assert len(err.strip().splitlines()) == 1


# Trained on Fashion-MNIST (1 channel, 10 classes), each network loses 2 * 9 * 32 stem
# weights (3 -> 1 input channels of a 3x3 conv to 32) and 990 * (W + 1) head weights
# (1000 -> 10 classes after a last width W) from pycls' published parameter counts; its only
# dense 3x3 conv is the stem, which at 16 px reads 16 * 16 * 1 and writes 8 * 8 * 32 elements.
HAND_PARAMS = {
    "RegNetX-200MF": 2_684_792 - 576 - 990 * 369,  # W = 368
    "RegNetY-400MF": 4_344_144 - 576 - 990 * 441,  # W = 440
    "EfficientNet-B0": 5_288_548 - 576 - 990 * 1281,  # head 1280
}
STEM_MOVED = 16 * 16 * 1 + 8 * 8 * 32
# an ops profile with three costs: 20 ms a step, 10 ns per parameter a step, 1 us per
# element the stem conv moves per image
HAND_COSTS = {"step": 0.02, "params": 1e-8, "conv.moved": 1e-6}


def _hand_seconds_per_image(name: str, batch: int) -> float:
    return (0.02 + 1e-8 * HAND_PARAMS[name] + 1e-6 * STEM_MOVED * batch) / batch


def test_epoch_time_check_of_a_results_table(tmp_path):
    """compare/report --profile: predicted vs measured epoch time of a study's own models,
    priced by a profile whose costs make every prediction computable by hand."""
    import pandas as pd

    from spaces.ops import KINDS
    from spaces.registry import get_model
    from trials.compare.runtime_check import epoch_time_check

    hand = tmp_path / "hand.json"
    hand.write_text(json.dumps({"name": "hand", "kind": "ops", "batch": 4, "kinds": list(KINDS),
                                "costs": HAND_COSTS, "unit": "s/img", "n": 3, "c0": 0.0,
                                "c_acts": 0.0, "c_flops": 0.0}))  # fmt: skip
    train = {"dataset": "fashion-mnist", "train_size": 2000, "batch_size": 4, "resolution": 16}
    names = ["RegNetX-200MF", "RegNetY-400MF", "EfficientNet-B0"]
    rows = []
    for i, name in enumerate(names):
        spec = get_model(name)
        rows.append({"key": f"k{i}", "status": "done", "epoch_time": 10.0 * (i + 1),
                     "model": name, "method": "search", "strategy": "", "regime": "40MF",
                     **spec.to_dict()})  # fmt: skip
    rows.append({**rows[0], "key": "k9", "status": "failed"})  # not trained: no check
    rows.append({**rows[1], "key": "k8", "phase": "final", "seed": 1})  # same network: once
    check = epoch_time_check(pd.DataFrame(rows), str(hand), train)
    assert [r["model"] for r in check["rows"]] == names and check["summary"]["n"] == 3
    for i, (r, name) in enumerate(zip(check["rows"], names, strict=True)):
        expected = _hand_seconds_per_image(name, 4) * 2000
        assert r["predicted_s"] == pytest.approx(expected, rel=1e-9)
        assert r["measured_s"] == 10.0 * (i + 1) and r["resolution"] == 16
        assert r["error"] == pytest.approx((expected - r["measured_s"]) / r["measured_s"])
    assert "trainer's own epoch time (batch 4" in check["measured"]
    # the comparison's timing pass (one process, CPU clock) is preferred where it timed a model
    timing = {"seconds_per_image": {"RegNetY-400MF": 0.002}, "batch_size": 8,
              "epoch_images": 1000, "clock": "cpu", "threads": 1}  # fmt: skip
    check = epoch_time_check(pd.DataFrame(rows), str(hand), train, timing)
    assert check["batch"] == 8 and check["images"] == 1000 and "timing pass" in check["measured"]
    by_model = {r["model"]: r for r in check["rows"]}
    assert by_model["RegNetY-400MF"]["measured_s"] == pytest.approx(2.0)
    assert by_model["RegNetX-200MF"]["measured_s"] == 10.0  # not timed: the trainer's own
    expected = _hand_seconds_per_image("RegNetY-400MF", 8) * 1000
    assert by_model["RegNetY-400MF"]["predicted_s"] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(Exception, match="images per epoch"):
        epoch_time_check(pd.DataFrame(rows), str(hand), {"dataset": "/some/folder"})


def test_report_shows_predicted_vs_measured_epoch_time(ops_profile, tmp_path):
    """`compare/report --profile`: the HTML report gains a section, a table row per model and a
    figure; summary.json keeps the check. Without a check neither appears."""
    import base64
    import re

    import pandas as pd

    from spaces.registry import get_model
    from trials.compare.report import build_report
    from trials.compare.runtime_check import epoch_time_check

    train = {"dataset": "fashion-mnist", "train_size": 2000, "batch_size": 4, "resolution": 16}
    rows = []
    for i, (name, method) in enumerate(
        [("RegNetX-200MF", "base"), ("RegNetY-400MF", "search"), ("RegNetX-400MF", "scaling")]
    ):
        spec = get_model(name)
        rows.append({"key": f"k{i}", "status": "done", "error": 0.2 - 0.01 * i,
                     "epoch_time": 10.0 * (i + 1), "attempts": 1, "model": name,
                     "method": method, "space": "regnetx", "phase": "first", "seed": 0,
                     "strategy": "w" if method == "scaling" else "",
                     "regime": "5MF" if method == "base" else "40MF",
                     "flops": 5e6 * (i + 1), "params": 1e5, "acts": 1e5 * (i + 1),
                     **spec.to_dict()})  # fmt: skip
    df = pd.DataFrame(rows)
    check = epoch_time_check(df, str(ops_profile), train)
    meta = {"preset": "synthetic", "regimes": {"base": "5MF", "top": "40MF"}}
    path = build_report(df, tmp_path / "with", meta, check)
    text = path.read_text()
    assert "Epoch time: measured vs predicted by" in text
    first = check["rows"][0]
    assert f"{first['error']:+.1%}" in text and "within ±10 %" in text
    assert (path.parent / "epoch_time_predicted.png").is_file()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["epoch_time_check"]["summary"]["n"] == 3
    plain = build_report(df, tmp_path / "without", meta).read_text()
    assert "measured vs predicted" not in plain
    assert not (tmp_path / "without" / "epoch_time_predicted.png").exists()
