"""The options that outside (traced) models and data-parallel training brought to
`candidates`, `profile predict` and `train`: each test fails if its option did nothing."""

import json

from spaces import complexity, get_model
from spaces.trace import trace_model
from tests.test_trace import ops_profile  # noqa: F401 (the fixture)
from trials import available_cpus
from trials.cli import main

FACTORY = "tests.trace_models:plain_convnet"


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_candidates_max_acts_keeps_exactly_the_models_within_it(capsys):
    names = ["RegNetX-200MF", "RegNetY-400MF", "RegNetX-800MF"]
    acts = sorted(complexity(get_model(n).with_resolution(32)).acts for n in names)
    limit = (acts[0] + acts[1]) // 2  # between the smallest and the next
    assert main(["candidates", *names, "-r", "32", "--max-acts", str(limit), "--json"]) == 0
    fits = [r["model"] for r in _json(capsys) if r["fits"]]
    assert len(fits) == 1 and complexity(get_model(fits[0]).with_resolution(32)).acts == acts[0]


def test_candidates_max_runtime_prices_with_the_profile(capsys, ops_profile):  # noqa: F811
    prof, path = ops_profile
    names = ["RegNetX-200MF", "RegNetX-800MF"]
    assert main(["candidates", *names, "-r", "32", "--profile", path, "--json"]) == 0
    times = {r["model"]: r["runtime"] for r in _json(capsys)}
    assert times["RegNetX-200MF"] < times["RegNetX-800MF"]
    limit = (times["RegNetX-200MF"] + times["RegNetX-800MF"]) / 2
    argv = ["candidates", *names, "-r", "32", "--profile", path, "--max-runtime", str(limit)]
    assert main([*argv, "--json"]) == 0
    assert {r["model"]: r["fits"] for r in _json(capsys)} == {
        "RegNetX-200MF": True,
        "RegNetX-800MF": False,
    }


def test_candidates_input_shape_and_kwargs_reach_the_traced_factory(capsys):
    argv = ["candidates", FACTORY, "--kwargs", '{"width": 16}', "--input-shape", "3,40,40"]
    assert main([*argv, "--json"]) == 0
    (row,) = _json(capsys)
    want = trace_model(FACTORY, (3, 40, 40), {"width": 16})
    assert (row["params"], row["acts"]) == (want.params, want.acts)
    default = trace_model(FACTORY, (3, 32, 32))
    assert (row["params"], row["acts"]) != (default.params, default.acts)


def test_profile_predict_input_shape_and_kwargs_reach_the_traced_factory(capsys, ops_profile):  # noqa: F811
    _, path = ops_profile
    assert main(["profile", "predict", path, FACTORY, "-r", "32", "--json"]) == 0
    small = _json(capsys)
    argv = ["profile", "predict", path, FACTORY, "--kwargs", '{"width": 32}']
    assert main([*argv, "--input-shape", "3,64,64", "--json"]) == 0
    big = _json(capsys)
    want = trace_model(FACTORY, (3, 64, 64), {"width": 32})
    assert (big["flops"], big["params"]) == (want.flops, want.params)
    assert big["seconds_per_image"] > small["seconds_per_image"]


def test_train_cpus_per_worker_is_reserved_for_every_worker(tmp_path, capsys):
    """Two workers of all this machine's CPUs each cannot be placed: refused before any
    training (with the default of 1 CPU each the run would start)."""
    argv = ["train", "RegNetX-200MF", "--workers", "2", "--resolution", "32", "--epochs", "1"]
    cpus = str(available_cpus())
    assert main([*argv, "--cpus-per-worker", cpus, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"need {2 * available_cpus()} CPUs" in err
    assert not (tmp_path / "run").exists()
