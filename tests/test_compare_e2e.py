"""One tiny real comparison: Ray, real training on a Fashion-MNIST slice, the report, a resume
that trains nothing, and `fastscale report DIR` rebuilding from stored results."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from trials.cli import main
from trials.study import load_results

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


@pytest.mark.slow
def test_tiny_compare_end_to_end(tmp_path, capsys):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "cmp"
    argv = ["compare", "--preset", str(preset), "--out", str(out), "-n", "2", "--json"]
    assert main(argv) == 0
    outcome = json.loads(capsys.readouterr().out)
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
