"""`study run` flags that change what a study keeps and retries, on the shared two-node test
cluster (tests/fixtures_ray.py), each with a check that fails if the flag did nothing:
--keep-weights (the final weights stay, loadable into the network; without it a finished
candidate keeps only its record: tests/test_study_early_stop.py checks that), --tolerance
(the sampled candidates' flops window), --max-failures with --base-lr (a diverging learning
rate fails every attempt: two attempts, not the default one)."""

from __future__ import annotations

import json

import pytest

from trials.cli import main
from trials.study import StudyStore

from .test_study_ray import TINY

pytestmark = pytest.mark.slow


def _study(tmp_path, capsys, *flags, code=0):
    out = tmp_path / "s"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "1", "--epochs", "1"]
    assert main([*args, *TINY, *flags, "--out", str(out), "--json"]) == code
    captured = capsys.readouterr()
    return out, json.loads(captured.out), captured.err


def test_keep_weights_and_tolerance(ray_cluster, tmp_path, capsys):
    import torch

    from spaces.build import build_model
    from spaces.specs import spec_from_dict
    from trials.study.checkpoint_storage import WEIGHTS, resolve

    out, (row,), _ = _study(tmp_path, capsys, "--keep-weights", "--tolerance", "0.2")
    assert row["status"] == "done"
    store = StudyStore(out)
    checkpoint = store.status(row["key"])["checkpoint"]
    assert checkpoint, "--keep-weights left no weights"
    _fs, path = resolve(checkpoint)
    state = torch.load(f"{path}/{WEIGHTS}", weights_only=True)
    model = build_model(spec_from_dict(store.candidate(row["key"])["spec"]))
    model.load_state_dict(state)  # strict: every tensor of the trained network is there
    # --tolerance 0.2 was stored with the definition and bounds the sample
    definition = json.loads((out / "study.json").read_text())["definition"]
    assert definition["tolerance"] == 0.2
    assert abs(row["flops"] / 5e6 - 1) <= 0.2


def test_max_failures_retries_a_failing_candidate(ray_cluster, tmp_path, capsys):
    # base lr 1e12 over 8 steps of 16 images: the loss is not finite within the epoch, so
    # every attempt fails (the later --batch-size wins over TINY's)
    flags = ["--base-lr", "1e12", "--batch-size", "16", "--max-failures", "2"]
    _out, (row,), err = _study(tmp_path, capsys, *flags, code=1)  # 1: a candidate failed
    # two attempts (the default, one, is tests/test_study_ray.py's NaN-loss test)
    assert row["status"] == "failed" and row["attempts"] == 2 and row["failures"] == 2
    assert row["failure"].startswith("TrainingDiverged") and "every candidate failed" in err
