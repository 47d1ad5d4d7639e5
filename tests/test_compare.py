"""Presets and the candidate construction of `fastscale compare` (pure: no training)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from spaces.complexity import complexity
from spaces.registry import get_model
from trials.cli import main
from trials.compare.candidates import (
    CompareError,
    dataset_shape,
    finalists,
    longest_first,
    model_id,
    round_a,
    round_b,
)
from trials.compare.preset import PresetError, list_presets, load_preset, parse_preset
from trials.data.catalogue import DatasetMissing
from trials.study import Candidate

FMNIST = (1, 10)  # (in_channels, num_classes)


def tiny(**changes) -> dict:
    data = {
        "name": "tiny",
        "dataset": "fashion-mnist",
        "resolution": 16,
        "spaces": ["regnety"],
        "base": {"regnety": {"search": 3}},
        "regimes": {"base": "0.5MF", "intermediate": "4MF", "top": "16MF"},
        "tolerance": 0.05,
        "samples": 4,
        "strategies": ["w", "dwr", "dWr"],
        "seed": 3,
        "train": {"epochs": 1, "batch_size": 64, "train_size": 256, "val_size": 256},
        "finalists": {"epochs": 1, "seeds": [1], "levels": ["top"]},
    }
    data.update(changes)
    return data


def test_shipped_presets_load_with_the_paper_ratios():
    assert {"paper", "cpu-quick", "cpu-full"} <= set(list_presets())
    for name in ("paper", "cpu-quick", "cpu-full"):
        p = load_preset(name)
        r = p.regimes
        assert r["intermediate"] == 8 * r["base"] and r["top"] == 4 * r["intermediate"], name
        assert {"w", "dwr", "dWr"} <= set(p.strategies)
    paper = load_preset("paper")
    assert paper.dataset is None and paper.resolution == 224 and paper.samples == 32
    assert paper.spaces == ("regnety", "regnetz") and paper.gpus_per_trial == 0
    # the paper's setting: every trial data-parallel on 8 GPUs, global batch 1024
    assert paper.parallel == {"workers_per_trial": 8, "cpus_per_worker": 7, "gpus_per_worker": 1}
    assert paper.train["batch_size"] == 1024
    assert paper.labels == {"base": "500MF", "intermediate": "4GF", "top": "16GF"}
    assert paper.finalists.epochs == 4 * paper.train["epochs"]
    assert load_preset("cpu-full").samples == 32


def test_preset_from_file_and_errors_name_the_allowed_values(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(tiny()))
    assert load_preset(str(path)).labels["top"] == "16MF"
    with pytest.raises(PresetError, match="unknown preset 'nope'; allowed: .*cpu-quick"):
        load_preset("nope")
    bad = {
        "bogus": ("unknown field 'bogus'; allowed: name, description, dataset", 1),
        "regimes": ("regimes must grow", {"base": "4MF", "intermediate": "1MF", "top": "16MF"}),
        "strategies": ("strategies: .*allowed|strategies: .*one of", ["w", "zz"]),
        "train": ("train: train config: unknown field 'lr'", {"lr": 1}),
        "spaces": ("spaces\\[0\\] must be one of 'regnetx', 'regnety' or 'regnetz'", ["resnet"]),
        "finalists": (
            "finalists.select must be one of",
            {"epochs": 1, "seeds": [1], "select": "x"},
        ),
    }
    for key, (message, value) in bad.items():
        with pytest.raises(PresetError, match=message):
            parse_preset(tiny(**{key: value}), "mine.yaml")
    data = tiny()
    del data["regimes"]
    with pytest.raises(PresetError, match="missing field 'regimes'"):
        parse_preset(data, "mine.yaml")
    path.write_text("regimes: [unclosed")
    with pytest.raises(PresetError, match="not valid YAML"):
        load_preset(str(path))


def test_round_a_is_deterministic_and_in_regime():
    preset = parse_preset(tiny(), "tiny")
    a1, a2 = round_a(preset, FMNIST), round_a(preset, FMNIST)
    assert [c.spec.to_dict() for c in a1] == [c.spec.to_dict() for c in a2]
    other = parse_preset(tiny(seed=4), "tiny")
    assert [c.spec for c in round_a(other, FMNIST)] != [c.spec for c in a1]
    counts = pd.Series([c.tags["level"] for c in a1]).value_counts().to_dict()
    assert counts == {"base": 3, "intermediate": 4, "top": 4}
    assert round_a(preset, FMNIST, n=2)[:3] == a1[:3]  # -n changes the count, not the base
    for c in a1:
        assert c.tags["method"] == "search" and c.tags["phase"] == "first"
        assert c.tags["model"] == model_id(c.spec)
        assert (c.spec.in_channels, c.spec.num_classes, c.spec.resolution) == (1, 10, 16)
        target = preset.regimes[c.tags["level"]]
        assert abs(complexity(c.spec).flops / target - 1) <= preset.tolerance


def test_fixed_base_is_trained_as_the_base():
    preset = parse_preset(tiny(base={"regnety": {"model": "RegNetY-200MF"}}), "tiny")
    a = round_a(preset, FMNIST)
    base = [c for c in a if c.tags["level"] == "base"]
    assert len(base) == 1 and base[0].tags["method"] == "base"
    assert base[0].spec.resolution == 16 and base[0].spec.in_channels == 1


def _results(cands, errors):
    return pd.DataFrame(
        [
            {"key": f"k{i}", "status": "done", "error": e, **c.tags}
            for i, (c, e) in enumerate(zip(cands, errors, strict=True))
        ]
    )


def test_round_b_scales_the_best_base_and_the_best_intermediate():
    preset = parse_preset(tiny(), "tiny")
    a = round_a(preset, FMNIST)
    # the 2nd base sample and the 3rd intermediate sample are the best
    errors = [0.5, 0.3, 0.4] + [0.30, 0.28, 0.20, 0.29] + [0.25] * 4
    res = _results(a, errors)
    b = round_b(preset, FMNIST, res, a)
    assert [(c.tags["method"], c.tags["level"], c.tags["strategy"]) for c in b] == [
        (m, lv, s)
        for m, levels in (("scaling", ("intermediate", "top")), ("hybrid", ("top",)))
        for lv in levels
        for s in ("w", "dwr", "dWr")
    ]
    for c in b:
        source = a[1] if c.tags["method"] == "scaling" else a[5]
        assert c.tags["source"] == source.tags["model"]
        flops = complexity(c.spec).flops
        assert abs(flops / preset.regimes[c.tags["level"]] - 1) <= preset.tolerance
        assert c.spec.in_channels == 1 and c.spec.num_classes == 10
    w, dwr = (c.spec for c in b[3:5])
    assert w.resolution == 16 and dwr.resolution > 16  # w keeps r, dwr grows it
    assert b == round_b(preset, FMNIST, res, a)  # deterministic


def test_finalists_pick_each_methods_best_at_the_chosen_levels():
    preset = parse_preset(tiny(), "tiny")
    a = round_a(preset, FMNIST)
    res = _results(a, [0.5, 0.3, 0.4] + [0.30, 0.28, 0.20, 0.29] + [0.25, 0.21, 0.27, 0.26])
    b = round_b(preset, FMNIST, res, a)
    res = pd.concat([res, _results(b, [0.3, 0.31, 0.32, 0.24, 0.22, 0.23, 0.19, 0.2, 0.18])])
    fin = finalists(preset, res, a + b)
    assert [(c.tags["method"], c.tags["strategy"]) for c in fin] == [
        ("search", ""),
        ("scaling", "dwr"),
        ("hybrid", "dWr"),
    ]
    assert all(c.tags["phase"] == "final" and c.tags["level"] == "top" for c in fin)
    assert fin[0].spec == a[8].spec
    every = parse_preset(tiny(finalists={"epochs": 2, "seeds": [1], "select": "all"}), "t")
    assert len(finalists(every, res, a + b)) == 1 + 3 + (1 + 3 + 3)
    assert finalists(parse_preset(tiny(finalists=None), "t"), res, a + b) == []


def test_missing_dataset_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(DatasetMissing, match="ImageFolder"):
        dataset_shape(str(tmp_path / "nowhere"))
    assert (
        main(
            [
                "compare",
                "--preset",
                "cpu-quick",
                "--dataset",
                str(tmp_path / "x"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastscale: error:") and "\n" not in err
    assert main(["compare", "--preset", "paper", "--out", str(tmp_path / "o")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["compare", "--preset", "nope"]) == 2
    assert "allowed: cpu-full, cpu-quick, paper" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_dataset_shape_of_an_image_folder(tmp_path):
    for split in ("train", "val"):
        for cls in ("cat", "dog", "eel"):
            (tmp_path / split / cls).mkdir(parents=True)
    assert dataset_shape(str(tmp_path)) == (3, 3)
    assert dataset_shape("fashion-mnist") == (1, 10)
    assert issubclass(CompareError, Exception)


def test_compare_refuses_a_directory_made_by_study_run(tmp_path, capsys):
    from trials.study import StudyStore

    out = tmp_path / "study"
    StudyStore(out).create({"source": "search", "space": "regnetx", "regime": 5e6})
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code = main(["compare", "--preset", "cpu-quick", "--out", str(out)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "study run" in lines[0], err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched


def test_planned_work_is_announced_for_cpu_quick():
    """The total announced before round A: cpu-quick is 34 trainings (docs/compare.md)."""
    from trials.compare.candidates import planned_work, round_a
    from trials.compare.preset import load_preset
    from trials.training.recipe import TrainConfig

    preset = load_preset("cpu-quick")
    config = TrainConfig.from_dict({**preset.train, "dataset": "fashion-mnist"})
    work = planned_work(preset, len(round_a(preset, (1, 10))), config)
    assert work == {"A": 15, "B": 9, "C": 10}


def test_compare_json_is_read_through_its_schema(tmp_path, capsys):
    """What _write_meta writes reads back; a compare.json that is not JSON, or has a wrong
    type, is one line from `report` (not a traceback from inside the report)."""
    import json

    from trials.compare.meta import read_meta
    from trials.compare.run import _write_meta

    preset = parse_preset(tiny(), "tiny")
    timing = {"seconds_per_image": {"m": 0.001}, "epoch_images": 256}
    meta = _write_meta(tmp_path, preset, "fashion-mnist", None, 12.5, ["k1"], timing)
    assert read_meta(tmp_path) == json.loads(json.dumps(meta)) and read_meta(tmp_path / "x") == {}
    for text, says in (
        ("{not json", "is not valid JSON"),
        (json.dumps({**meta, "keys": "k1"}), "keys must be a list"),
        (json.dumps({**meta, "runs": [{"wall_s": "slow"}]}), "runs[0]"),
    ):
        (tmp_path / "compare.json").write_text(text)
        assert main(["report", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err


def test_round_trainings_start_longest_first_ties_in_order():
    """Rounds start their trainings by descending flops (fewer idle workers at a round's
    end); equal flops keep the candidates' order."""
    names = ["RegNetX-200MF", "RegNetY-1.6GF", "RegNetX-400MF", "RegNetY-1.6GF", "RegNetY-800MF"]
    cands = [Candidate(get_model(n), {"model": f"{n}#{i}"}) for i, n in enumerate(names)]
    order = [c.tags["model"] for c in longest_first(cands)]
    assert order == ["RegNetY-1.6GF#1", "RegNetY-1.6GF#3", "RegNetY-800MF#4",
                     "RegNetX-400MF#2", "RegNetX-200MF#0"]  # fmt: skip
    flops = [complexity(c.spec).flops for c in longest_first(cands)]
    assert flops == sorted(flops, reverse=True)
