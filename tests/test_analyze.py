"""`fastscale analyze` end to end: its sources (a study directory written by the real store, a
CSV table, a pycls sweep.json in pycls's format), the refined-space round trip (analyze →
design-space file → `sample` and `study run --space` draw only inside it) and the CLI
contract (table, --json, HTML, one-line errors with exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spaces.complexity import complexity
from spaces.pycls_writer import pycls_yaml
from spaces.sampler import sample
from trials.analysis.run import AnalyzeConfig, analyze
from trials.analysis.sources import read_source
from trials.cli import main
from trials.study.define import build_definition
from trials.study.search import random_candidates
from trials.study.store import StudyStore

RANGES = ("depth", "w0", "wa", "wm", "group_width")


def _error(spec, shift=0.0, noise=0) -> float:
    """A made-up error with a known trend: best near depth 15 and small wm."""
    rng = np.random.default_rng(noise)
    return 0.2 + 0.004 * abs(spec.depth - 15) + 0.05 * (spec.wm - 2) + shift + rng.normal(0, 0.003)


def _table(path: Path, spaces=(("regnetx", 0), ("regnety", 1)), n=40, **extra) -> Path:
    rows = []
    for space, seed in spaces:
        for i, d in enumerate(sample(space, 400e6, n=n, seed=seed, tolerance=0.05)):
            s = d["spec"]
            rows.append(
                {
                    "spec": json.dumps(s.to_dict()),
                    "error": _error(s, 0.01 * seed, i + 100 * seed),
                    "space": space,
                    "regime": "400MF",
                    **extra,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["analyze", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_source_reads_specs_and_counts_flops(tmp_path):
    df = read_source(str(_table(tmp_path / "t.csv", n=5)))
    assert len(df) == 10 and set(df["space"]) == {"regnetx", "regnety"}
    first = df.iloc[0]
    spec = sample("regnetx", 400e6, n=1, seed=0, tolerance=0.05)[0]["spec"]
    assert first["flops"] == complexity(spec).flops and first["depth"] == spec.depth


def test_cli_prints_one_row_per_population_and_writes_the_report(tmp_path, capsys):
    table = _table(tmp_path / "t.csv")
    code, out, err = _run(capsys, table, "--out", tmp_path / "a", "--bootstrap", 200)
    assert code == 0, err
    assert "regnetx 400MF" in out and "regnety 400MF" in out and "D=" in out
    assert "keeps" in out and "refined_space.yaml" in out
    html = (tmp_path / "a" / "analysis.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<script" not in html
    saved = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert [p["label"] for p in saved["populations"]] == ["regnetx 400MF", "regnety 400MF"]


def test_json_holds_the_edf_arrays_and_is_deterministic(tmp_path, capsys):
    table = _table(tmp_path / "t.csv", n=20)
    runs = []
    for out in ("a", "b"):
        code, text, err = _run(capsys, table, "--out", tmp_path / out, "--json", "--bootstrap", 100)
        assert code == 0, err
        runs.append(json.loads(text))
    first, second = runs[0]["populations"][0], runs[0]["populations"][1]
    e = pd.read_csv(table).query("space == 'regnetx'")["error"].to_numpy()
    assert first["edf"]["x"] == sorted(set(e.tolist()))
    assert first["edf"]["F"][-1] == pytest.approx(1.0) and first["n"] == 20
    assert all(lo <= v + 1e-12 for lo, v in zip(first["edf"]["lo"], first["edf"]["F"], strict=True))
    assert second["ks_vs_first"]["d"] > 0 and 0 < second["ks_vs_first"]["p"] <= 1
    assert len(first["best_of_m"]["m"]) == 20 and first["best_of_m"]["m"][0] == 1
    runs[0].pop("files"), runs[1].pop("files")
    assert runs[0] == runs[1]


def _in_range(spec, space: dict) -> bool:
    return all(space[k]["low"] <= getattr(spec, k) <= space[k]["high"] for k in RANGES)


def test_refined_space_round_trips_into_sample_and_study(tmp_path, capsys):
    table = _table(tmp_path / "t.csv", spaces=(("regnetx", 0),), n=60)
    result = analyze([str(table)], tmp_path / "a", AnalyzeConfig(bootstrap=100))
    refined = result["refined"]
    assert refined["good_kept"] >= 0.8 and refined["others_kept"] < 1.0
    path = Path(result["files"]["refined_space"])
    space = yaml.safe_load(path.read_text())
    assert space["base"] == "regnetx" and space["depth"]["high"] < 28  # the trend was read

    code = main(["sample", "--space", str(path), "--regime", "400MF", "-n", "12", "--json",
                 "--tolerance", "0.05"])  # fmt: skip
    drawn = json.loads(capsys.readouterr().out)
    assert code == 0 and len(drawn) == 12
    for rec in drawn:
        assert all(space[k]["low"] <= rec[k] <= space[k]["high"] for k in RANGES), rec

    opts = {"space": str(path), "regime": 20e6, "n": 6, "tolerance": 0.05}
    definition = build_definition(opts, tmp_path / "study")
    assert definition.space["name"] == "regnetx-refined"  # the content, not the path
    cands = random_candidates(definition)
    assert len(cands) == 6 and all(_in_range(c.spec, space) for c in cands)
    assert {c.tags["space"] for c in cands} == {"regnetx-refined"}


def _study(tmp_path: Path, space: str, n: int = 6) -> Path:
    """A study directory as `study run` leaves it: the real store, candidates done."""
    out = tmp_path / space
    definition = build_definition({"space": space, "regime": 20e6, "n": n, "tolerance": 0.05}, out)
    store = StudyStore(out)
    store.create(definition.to_dict())
    for i, cand in enumerate(random_candidates(definition)):
        key = store.add(cand.spec, definition.train, cand.tags)
        cx = complexity(cand.spec)
        store.write_status(key, {"status": "done", "error": _error(cand.spec, noise=i),
                                 "flops": cx.flops, "params": cx.params, "acts": cx.acts,
                                 "attempts": 1})  # fmt: skip
    return out


def test_study_directories_are_populations(tmp_path, capsys):
    a, b = _study(tmp_path, "regnetx"), _study(tmp_path, "regnety")
    code, out, err = _run(capsys, a, b, "--out", tmp_path / "o", "--json", "--bootstrap", 50)
    assert code == 0, err
    pops = json.loads(out)["populations"]
    assert [(p["label"], p["n"]) for p in pops] == [
        ("regnetx 20.0MF", 6),
        ("regnety 20.0MF", 6),
    ]  # the study tag


def _sweep_record(spec, i: int, ema: bool = True) -> dict:
    """One job as pycls's tools/sweep_collect.py stores it: the job's config, complexity and
    the sorted log data (per-epoch lists), errors in percent."""
    cfg = yaml.safe_load(pycls_yaml(spec))
    cfg.setdefault("TRAIN", {})["DATASET"] = "cifar10"
    cfg["TRAIN"]["IM_SIZE"] = spec.resolution
    cx = complexity(spec)
    errs = [60.0 - i, 40.0 - i]
    test = {"epoch": ["1/2", "2/2"], "epoch_ind": [1, 2], "epoch_max": [2, 2],
            "top1_err": errs, "min_top1_err": errs, "time_avg": [1.0, 1.0]}  # fmt: skip
    record = {
        "cfg": cfg,
        "complexity": {"flops": cx.flops, "params": cx.params, "acts": cx.acts},
        "test_epoch": test,
        "train_epoch": {**test, "lr": [0.1, 0.05]},
        "log_file": f"/sweeps/demo/logs/{i:03d}/stdout.log",
        "err_file": f"/sweeps/demo/logs/{i:03d}/stderr.log",
        "err": "",
    }
    if ema:
        record["test_ema_epoch"] = {**test, "min_top1_err": [e - 1 for e in errs]}
    return record


def test_pycls_sweep_reader(tmp_path, capsys):
    specs = [d["spec"] for d in sample("regnety", 400e6, n=5, seed=3, tolerance=0.05)]
    sweep = [_sweep_record(s, i, ema=i != 1) for i, s in enumerate(specs)]
    sweep.append({"cfg": sweep[0]["cfg"], "log_file": "x", "err": ""})  # not tested yet: skipped
    path = tmp_path / "demo" / "sweep.json"
    path.parent.mkdir()
    path.write_text(json.dumps(sweep, sort_keys=True))
    df = read_source(str(path))
    assert len(df) == 5 and set(df["space"]) == {"demo"} and set(df["dataset"]) == {"cifar10"}
    assert df["error"].tolist() == pytest.approx([0.39, 0.39, 0.37, 0.36, 0.35])  # EMA, else test
    assert df["depth"].tolist() == [s.depth for s in specs]
    assert df["flops"].tolist() == [complexity(s).flops for s in specs]
    code, out, err = _run(capsys, path, "--out", tmp_path / "o", "--bootstrap", 50)
    assert code == 0 and "demo" in out, err


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda p: pd.DataFrame({"spec": ["{}"], "err": [0.1]}).to_csv(p / "t.csv"),
            "no error column",
        ),
        (lambda p: _table(p / "t.csv", spaces=(("regnetx", 0),), n=1), "needs 2+"),
        (lambda p: (p / "sweep.json").write_text('{"cfg": {}}'), "not a pycls sweep.json"),
        (lambda p: (p / "sweep.json").write_text("[[1, 2]]"), "not a pycls sweep.json"),
        (lambda p: (p / "x.txt").write_text("hi"), "not a study or compare directory"),
    ],
)
def test_bad_sources_are_one_line_exit_2(tmp_path, capsys, make, message):
    make(tmp_path)
    source = next(p for p in tmp_path.iterdir() if p.is_file())
    code, out, err = _run(capsys, source, "--out", tmp_path / "o")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0] and source.name in lines[0], err
    assert not (tmp_path / "o" / "analysis.html").exists()


def test_mixed_datasets_are_refused_unless_by_separates_them(tmp_path, capsys):
    a = _table(tmp_path / "a.csv", spaces=(("regnetx", 0),), n=6, dataset="cifar10")
    b = _table(tmp_path / "b.csv", spaces=(("regnetx", 2),), n=6, dataset="fashion-mnist")
    code, _, err = _run(capsys, a, b, "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--by dataset" in err, err
    code, out, err = _run(capsys, a, b, "--out", tmp_path / "o", "--by", "dataset", "--by", "space")
    assert code == 0 and "cifar10 regnetx 400MF" in out, err
    code, _, err = _run(capsys, a, "--out", tmp_path / "o", "--by", "nope")
    assert code == 2 and "no such column" in err


def test_design_space_file_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "space.yaml"
    bad.write_text("base: regnetx\ndepth: [10, 14]\n")
    code = main(["sample", "--space", str(bad), "--regime", "20MF"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "base range" in err
    bad.write_text("base: regnetq\n")
    code = main(["sample", "--space", str(bad), "--regime", "20MF"])
    assert code == 2 and "regnetx, regnety, regnetz" in capsys.readouterr().err
    code = main(["sample", "--space", str(tmp_path / "none.yaml"), "--regime", "20MF"])
    assert code == 2 and "neither a space" in capsys.readouterr().err


def test_a_study_keeps_its_design_space_file_content(tmp_path):
    """The definition stores the file's content: resuming with the same file agrees, with a
    changed file is a one-line conflict."""
    from trials.study.define import reconcile
    from trials.study.store import StudyError

    path = tmp_path / "space.yaml"
    path.write_text("name: narrow\nbase: regnetx\ndepth: [14, 18]\n")
    opts = {"space": str(path), "regime": 20e6, "n": 4}
    stored = build_definition(opts, tmp_path / "s")
    assert stored.space == {"name": "narrow", "base": "regnetx", "depth": [14, 18]}
    assert reconcile(stored.to_dict(), opts, tmp_path / "s") == stored
    path.write_text("name: narrow\nbase: regnetx\ndepth: [14, 20]\n")
    with pytest.raises(StudyError, match="holds other ranges than the design space stored"):
        reconcile(stored.to_dict(), opts, tmp_path / "s")
    cands = random_candidates(stored)  # the stored content, not today's file
    assert all(14 <= c.spec.depth <= 18 for c in cands)


def test_parquet_tables_and_stage_level_specs_give_per_stage_trends(tmp_path):
    """An AnyNet-style table (stage lists as columns): per-stage depths and widths are the
    design parameters; parquet reads like CSV."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        depths = [1, int(rng.integers(1, 4)), int(rng.integers(2, 6)), 1]
        widths = [16, 32, int(rng.choice([48, 64, 96])), 128]
        rows.append({"family": "anynet", "block": "X", "depths": depths, "widths": widths,
                     "group_widths": [8] * 4, "bottlenecks": [1.0] * 4, "strides": [2] * 4,
                     "error": 0.3 - 0.01 * depths[2] + 0.001 * i})  # fmt: skip
    pd.DataFrame(rows).to_parquet(tmp_path / "anynet.parquet")
    df = read_source(str(tmp_path / "anynet.parquet"))
    assert df["d3"].tolist() == [r["depths"][2] for r in rows]
    result = analyze(
        [str(tmp_path / "anynet.parquet")], tmp_path / "o", AnalyzeConfig(bootstrap=50)
    )
    assert set(result["trends"][0]["bands"]) == {"d2", "d3", "w3"}  # the stage fields that vary
    assert result["refined"] is None  # a refined space is written for RegNet populations only


def test_compare_directories_give_their_searched_populations(tmp_path, capsys):
    """A comparison's directory: only method=search, phase=first candidates of its own keys."""
    out = _study(tmp_path, "regnetx", n=6)
    store = StudyStore(out)
    keys = store.keys()
    for i, key in enumerate(keys):
        tags = {"method": "search" if i < 4 else "scaling", "phase": "first", "space": "regnetx",
                "regime": "20MF"}  # fmt: skip
        (store.cdir(key) / "tags.json").write_text(json.dumps([tags]))
    (out / "compare.json").write_text(json.dumps({"keys": keys[1:]}))
    df = read_source(str(out))
    assert sorted(df["key"]) == sorted(keys[1:4])
