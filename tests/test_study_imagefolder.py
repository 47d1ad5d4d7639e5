"""`study run` on an ImageFolder tree samples its models with the tree's head: the dataset
catalogue counts the class folders, so the sampled (and trained) networks have 3 classes and
3 input channels and their flops lie in the regime window computed with that head — with a
1000-class head they would land several percent off."""

from __future__ import annotations

import json

import pytest

from spaces.complexity import complexity
from spaces.specs import RegNetSpec
from trials.cli import main
from trials.data.catalogue import dataset_info, trained_spec

pytestmark = pytest.mark.slow


def test_image_folder_study_samples_with_the_dataset_head(
    ray_cluster, tmp_path, image_tree, capsys
):
    info = dataset_info(str(image_tree))
    assert (info.classes, info.channels) == (3, 3)
    regime, tol = 2_000_000, 0.01
    args = ["study", "run", "--space", "regnety", "--regime", "2MF", "-n", "2", "--json"]
    args += ["--dataset", str(image_tree), "--resolution", "16", "--batch-size", "6"]
    args += ["--out", str(tmp_path / "s")]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    for r in rows:
        assert (r["num_classes"], r["in_channels"], r["resolution"]) == (3, 3, 16)
        fields = ("block", "depth", "w0", "wa", "wm", "group_width")
        spec = RegNetSpec(**{k: r[k] for k in fields}, resolution=16)
        as_trained = trained_spec(spec, str(image_tree))
        assert r["flops"] == complexity(as_trained).flops
        assert abs(r["flops"] / regime - 1) <= tol  # in the window, with the 3-class head
        thousand = complexity(as_trained.replace(num_classes=1000)).flops
        assert abs(thousand / regime - 1) > tol  # the old 1000-class head misses it
