"""`fastscale scale | plan | profile`: JSON contracts, spec files, bad input (exit 2, one line),
and no torch/ray import on the planning path."""

import json
import subprocess
import sys

import pytest

from spaces.complexity import complexity
from spaces.io import load_specs
from trials.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_scale_target_json(capsys):
    d = _json(capsys, ["scale", "RegNetY-4.0GF", "--strategy", "dWr", "--target", "16GF", "--json"])
    assert all(isinstance(d[k], int) for k in ("flops", "params", "acts"))
    assert isinstance(d["factor"], float) and d["on_target"] is True
    assert d["strategy"] == "dWr" and d["alpha"] == pytest.approx(0.8)
    assert abs(d["flops"] / 16e9 - 1) <= 0.01 and d["depths"] and d["family"] == "anynet"
    assert d["factor"] == pytest.approx(d["flops"] / complexity_of("RegNetY-4.0GF"))


def complexity_of(name):
    from spaces.registry import get_model

    return complexity(get_model(name)).flops


def test_scale_factor_alpha_and_out_file(tmp_path, capsys):
    out = tmp_path / "scaled.json"
    d = _json(
        capsys,
        ["scale", "RegNetX-800MF", "--alpha", "0.5", "--factor", "2", "--json", "--out", str(out)],
    )
    assert d["s"] == 2.0 and d["strategy"] == "alpha=0.5" and "on_target" not in d
    (spec,) = load_specs(out)
    cx = complexity(spec)
    assert (cx.flops, cx.params, cx.acts) == (d["flops"], d["params"], d["acts"])
    saved = json.loads(out.read_text())
    assert saved["factor"] == pytest.approx(d["factor"]) and saved["name"] == d["name"]


def test_scale_table_mentions_scaling_down(capsys):
    assert main(["scale", "RegNetY-4.0GF", "--strategy", "w", "--target", "1GF"]) == 0
    out = capsys.readouterr().out
    assert "scaling down" in out and "on target" in out


def test_plan_json_is_ranked_with_the_contract_fields(capsys):
    rows = _json(capsys, ["plan", "RegNetY-4.0GF", "--target", "16GF", "--json"])["plans"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:
        for k in ("strategy", "alpha", "factor", "flops", "params", "acts", "on_target"):
            assert k in r
        assert r["predicted_runtime"] is None and r["on_target"] is True
        assert isinstance(r["flops"], int) and isinstance(r["factor"], float)
    assert any(r["alpha"] is None for r in rows)  # d, r, ... are outside the α family


def test_plan_budget_profile_and_alpha_list(capsys):
    rows = _json(
        capsys,
        ["plan", "RegNetY-4.0GF", "--target", "16GF", "--max-acts", "30M", "--profile",
         "v100x8-paper", "--max-runtime", "19.5", "--alphas", "0:1:0.1", "--strategies", "dwr",
         "--json"],
    )["plans"]  # fmt: skip
    assert rows and all(r["acts"] <= 30e6 and r["predicted_runtime"] <= 19.5 for r in rows)
    assert {r["strategy"] for r in rows} <= {f"alpha={a / 10:g}" for a in range(11)} | {
        "dwr",
        "w",
        "dr",
    }


def test_plan_all_shows_misses(capsys):
    rows = _json(
        capsys,
        ["plan", "RegNetY-4.0GF", "--target", "16GF", "--tolerance", "0.0001", "--all", "--json"],
    )["plans"]
    assert any(not r["on_target"] for r in rows) and all("miss" in r for r in rows)


def test_plan_out_dir_specs_export(tmp_path, capsys):
    out = tmp_path / "plans"
    assert main(["plan", "RegNetY-800MF", "--target", "3.2GF", "--alphas", "0.8", "--strategies", "", "--out-dir", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == ["01-alpha0.8.json"]
    (spec,) = load_specs(files[0])
    assert abs(complexity(spec).flops / 3.2e9 - 1) <= 0.01
    assert main(["export", str(files[0]), "--format", "pycls"]) == 0
    assert "DEPTHS" in capsys.readouterr().out


def test_plan_table_by_default(capsys):
    assert main(["plan", "RegNetY-4.0GF", "--target", "16GF", "--alphas", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "dWr" in out and "no budget given" in out and "take: #" in out


def test_profile_fit_show_list(tmp_path, capsys):
    timings = tmp_path / "t.csv"
    timings.write_text(
        "model,time\nRegNetY-400MF,1.0\nRegNetY-800MF,1.7\nRegNetY-1.6GF,3.1\nRegNetY-3.2GF,4.0\n"
    )
    out = tmp_path / "mine.json"
    d = _json(capsys, ["profile", "fit", str(timings), "--out", str(out), "--unit", "ms", "--json"])
    assert d["name"] == "mine" and d["n"] == 4 and out.exists()
    shown = _json(capsys, ["profile", "show", str(out), "--json"])
    assert shown["c_acts"] == d["c_acts"] and shown["unit"] == "ms"
    assert main(["profile", "show", "v100x8-paper"]) == 0
    assert "leave-one-out" in capsys.readouterr().out
    names = [p["name"] for p in _json(capsys, ["profile", "list", "--json"])]
    assert "v100x8-paper" in names


BAD = [
    (["scale", "RegNetY-4.0GF", "--strategy", "DWR", "--factor", "2"], "unknown strategy"),
    (["scale", "RegNetY-4.0GF", "--alpha", "1.5", "--factor", "2"], "0<=x<=1"),
    (
        ["scale", "RegNetY-4.0GF", "--strategy", "w", "--alpha", "0.5", "--factor", "2"],
        "exactly one",
    ),
    (["scale", "RegNetY-4.0GF", "--strategy", "w"], "exactly one of --factor"),
    (["scale", "RegNetY-4.0GF", "--strategy", "w", "--factor", "0"], "x>0"),
    (["scale", "RegNetY-4.0GF", "--strategy", "w", "--target", "0"], "positive"),
    (["plan", "RegNetY-4.0GF", "--target", "16QF"], "not a quantity"),
    (["plan", "RegNetY-4.0GF", "--target", "-16GF"], "quantity"),
    (
        ["plan", "RegNetY-4.0GF", "--target", "16GF", "--max-acts", "20M"],
        "--max-acts (max_acts) 20.0M",
    ),
    (["plan", "RegNetY-4.0GF", "--target", "16GF", "--max-runtime", "5"], "profile"),
    (["plan", "RegNetY-4.0GF", "--target", "16GF", "--alphas", "0,2"], "[0, 1]"),
    (["plan", "RegNetY-4.0GF", "--target", "16GF", "--alphas", "a:b"], "--alphas"),
    (["plan", "RegNetY-4.0GF", "--target", "16GF", "--alphas", "0:1:1e-9"], "at most 1001"),
    (["scale", "RegNetY-4.0GF", "--strategy", "w", "--factor", "1e9"], "[1e-06, 1e+06]"),
    (["plan", "RegNetY-4.0GF", "--target", "16GF", "--strategies", "fast"], "unknown strategy"),
    (["plan", "NoSuchNet", "--target", "16GF"], "unknown model"),
    (["profile", "show", "nope"], "unknown profile"),
]


@pytest.mark.parametrize("argv, needle", BAD)
def test_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastscale: error:") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


def test_malformed_profile_file_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "c0": "fast"}')
    args = ["plan", "RegNetY-4.0GF", "--target", "16GF", "--profile", str(bad)]
    proc = subprocess.run(
        [sys.executable, "-m", "trials", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "missing field" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "RegNetY-4.0GF", "--target", "16GF", "--json"],
        ["plan", "RegNetY-4.0GF", "--target", "16GF", "--max-acts", "32M"],
        ["plan", "RegNetY-4.0GF", "--target", "16GF", "--profile", "v100x8-paper"],
        ["scale", "RegNetY-4.0GF", "--strategy", "dWr", "--target", "16GF"],
        ["--help"],
    ],
)
def test_planner_path_imports_no_pandas_torch_or_ray(argv):
    """The planner answers at once: nothing on its path imports the heavy packages."""
    code = (
        "import sys\n"
        "from trials.cli import main\n"
        f"rc = main({argv!r})\n"
        "heavy = [m for m in ('torch', 'ray', 'optuna', 'pandas', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy, rc, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY [] 0" in proc.stderr, proc.stderr[-500:]
