"""Runtime profiles: NNLS fit, fit statistics, the shipped default, save/load, bad files."""

import itertools
import json

import numpy as np
import pytest

from planner.profiles import (
    ProfileError,
    fit_profile,
    list_profiles,
    load,
    load_profile,
    nnls,
    read_timings,
)
from spaces.complexity import complexity
from spaces.registry import get_model


def test_nnls_matches_a_brute_force_search():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.uniform(0, 1, (8, 3))
        b = a @ rng.uniform(-1, 1, 3) + rng.normal(0, 0.05, 8)
        x = nnls(a, b)
        assert (x >= 0).all()
        res = np.sum((a @ x - b) ** 2)
        # no feasible grid point does better
        grid = np.array(list(itertools.product(np.linspace(0, 2, 41), repeat=3)))
        best = np.min(np.sum((grid @ a.T - b) ** 2, axis=1))
        assert res <= best + 1e-9


def test_fit_recovers_known_coefficients():
    acts = np.array([5, 10, 20, 40, 80, 12]) * 1e6
    flops = np.array([0.4, 2, 1, 8, 4, 16]) * 1e9
    time = 0.5 + 2e-7 * acts + 1e-9 * flops
    rows = [{"acts": a, "flops": f, "time": t} for a, f, t in zip(acts, flops, time, strict=True)]
    p = fit_profile(rows, name="synthetic", unit="s")
    assert (p.c0, p.c_acts, p.c_flops) == pytest.approx((0.5, 2e-7, 1e-9), rel=1e-6)
    assert p.max_rel_error < 1e-9 and p.loo_max_rel_error < 1e-9 and p.n == 6
    assert p.pearson_params is None  # no params column


def test_negative_dependence_is_clipped_to_zero():
    acts = np.array([1, 2, 3, 4, 5]) * 1e6
    flops = np.array([5, 4, 3, 2, 1]) * 1e9
    rows = [{"acts": a, "flops": f, "time": 1 + a * 1e-6} for a, f in zip(acts, flops, strict=True)]
    p = fit_profile(rows)
    assert p.c_flops == 0 and p.c_acts > 0 and p.c0 >= 0


def test_default_profile_reproduces_its_source_rows_within_its_stated_error():
    p = load_profile("v100x8-paper")
    assert "v100x8-paper" in list_profiles()
    assert p.unit == "min/epoch" and "Fast and Accurate Model Scaling" in p.source
    assert "Section 4 table" in p.source and "REFERENCE" not in p.source
    assert p.n == len(p.rows) == 12
    rel = [abs(p.predict(r["acts"], r["flops"]) - r["time"]) / r["time"] for r in p.rows]
    assert max(rel) <= p.max_rel_error + 1e-12
    assert np.mean(rel) == pytest.approx(p.mean_rel_error)
    assert p.max_rel_error < 0.15 and p.loo_mean_rel_error < 0.1
    # the paper's observation (§7): time follows acts far more closely than params
    assert p.pearson_acts > 0.99 > p.pearson_flops > p.pearson_params
    # refitting the stored rows gives the stored profile
    again = fit_profile(p.rows, name=p.name)
    assert (again.c0, again.c_acts, again.c_flops) == pytest.approx((p.c0, p.c_acts, p.c_flops))
    assert again.loo_max_rel_error == pytest.approx(p.loo_max_rel_error)


def test_rows_from_models_and_specs():
    rows = [
        {"model": "RegNetY-400MF", "time": 1.0},
        {"model": "RegNetY-800MF", "time": 1.6},
        {"spec": get_model("RegNetY-1.6GF").to_dict(), "time": 2.9},
        {**get_model("RegNetY-3.2GF").to_dict(), "time": 4.1},
    ]
    p = fit_profile(rows)
    assert p.rows[0]["acts"] == complexity(get_model("RegNetY-400MF")).acts
    assert p.rows[3]["flops"] == complexity(get_model("RegNetY-3.2GF")).flops
    assert p.pearson_params is not None


def test_save_load_round_trip(tmp_path):
    p = load_profile("v100x8-paper")
    path = tmp_path / "copy.json"
    p.save(path)
    assert load_profile(str(path)) == p
    assert p.predict(np.array([1e7, 2e7]), np.array([1e9, 2e9])).shape == (2,)


def test_read_csv_and_json_timings(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(
        "model,flops,acts,params,time\na,400MF,6.7M,5.3M,2.8\nb,1GF,13.8M,,5.9\nc,4.4GF,49.5M,,19.2\n"
    )
    p = fit_profile(read_timings(csv_path))
    assert p.n == 3 and p.rows[1]["flops"] == 1e9 and p.pearson_params is None
    json_path = tmp_path / "t.json"
    json_path.write_text(json.dumps({"rows": [{"model": "RegNetX-200MF", "time": 1}] * 3}))
    assert len(read_timings(json_path)) == 3


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a mapping of fields, got list"),
        ('{"name": "x", "c0": 0, "c_acts": 1}', "missing field"),
        ('{"name": "x", "c0": 0, "c_acts": -1, "c_flops": 0}', "c_acts must be >= 0, got -1"),
        ('{"name": "x", "c0": 0, "c_acts": 1, "c_flops": 0, "speed": 3}', "unknown field"),
    ],
)
def test_malformed_profile_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ProfileError, match=match):
        load(path)


def test_bad_fit_inputs():
    with pytest.raises(ProfileError, match="at least 3"):
        fit_profile([{"acts": 1, "flops": 1, "time": 1}])
    with pytest.raises(ProfileError, match="row 1: time must be a positive"):
        fit_profile([{"acts": 1e6, "flops": 1e9, "time": t} for t in (1, -2, 3)])
    with pytest.raises(ProfileError, match="no time column"):
        fit_profile([{"acts": 1e6, "flops": 1e9}] * 3)
    with pytest.raises(ProfileError, match="unknown profile"):
        load_profile("no-such-profile")
