"""The operation-cost model: NNLS fitting recovers known costs, pricing (scalar = vectorized),
unpriceable operation kinds, `ops` profile files next to old linear ones, byte budgets."""

import json

import numpy as np
import pytest

from planner.profiles import ProfileError, load, load_profile
from planner.profiles.opfit import fit_ops_profile
from planner.profiles.opmodel import (
    MEMORY_FEATURES,
    TIME_FEATURES,
    feature_matrix,
    nnls_fit,
    robust_nnls_fit,
)
from planner.scale import scale_spec
from spaces.op_walk import op_counts, stages_ops_batch
from spaces.ops import KINDS
from spaces.registry import get_model
from spaces.sampler import sample
from spaces.units import UnitError, parse_bytes

BATCH = 8


def _specs(with_effnet=True):
    """A small diverse set: sampled X/Y/Z at two resolutions, scaled copies, EfficientNets."""
    specs = []
    for i, space in enumerate(("regnetx", "regnety", "regnetz")):
        for j, rec in enumerate(sample(space, 400e6, 4, 0.05, seed=i)):
            specs.append(rec["spec"].with_resolution((32, 48, 64, 40)[j]))
    y = get_model("RegNetY-200MF").with_resolution(48)
    specs += [scale_spec(y, s, 3) for s in ("w", "d", "dwr")]
    if with_effnet:
        b0 = get_model("EfficientNet-B0")
        specs += [b0.with_resolution(32), b0.with_resolution(56), scale_spec(b0, "d", 2)]
    return specs


def _true_costs(features, rng):
    return {name: float(rng.uniform(0.5, 2)) / max(1.0, _typical(name)) for name in features}


def _typical(name):
    """A rough size of each feature, so every true cost contributes a comparable share."""
    return {"step": 1, "calls": 300, "params": 5e6}.get(name, 5e7 * BATCH)


def _rows(specs, time_costs, mem_costs, noise=0.0, rng=None):
    rows = []
    for spec in specs:
        ops = op_counts(spec)
        t = feature_matrix(ops, BATCH, TIME_FEATURES, list(time_costs)) @ list(time_costs.values())
        m = feature_matrix(ops, BATCH, MEMORY_FEATURES, list(mem_costs)) @ list(mem_costs.values())
        if noise:
            t *= 1 + rng.normal(0, noise)
        rows.append({"name": str(len(rows)), "spec": spec.to_dict(), "seconds_per_step": float(t),
                     "memory_bytes": float(m), "flops": ops.flops, "acts": ops.acts,
                     "params": ops.params})  # fmt: skip
    return rows


def test_nnls_fit_recovers_nonnegative_costs_on_relative_error():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (30, 5)) * np.array([1e9, 1e6, 1e3, 1, 1])
    c = np.array([2e-9, 0, 1e-3, 0.5, 0.0])
    y = x @ c
    assert nnls_fit(x, y) == pytest.approx(c, rel=1e-6, abs=1e-12)
    assert (nnls_fit(x, y - 0.3 * x[:, 3]) >= 0).all()


def test_robust_fit_sets_aside_disturbed_slow_readings_only():
    """Readings slowed by other work (+40-60 %) are set aside and the costs recovered; a
    reading faster than the rest is kept (nothing makes a step faster than its operations)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 1, (40, 5)) * np.array([1e9, 1e6, 1e3, 1, 1])
    c = np.array([2e-9, 1e-7, 1e-3, 0.5, 0.2])
    y = (x @ c) * (1 + rng.normal(0, 0.01, 40))
    slow = [3, 17, 29]
    y[slow] *= [1.4, 1.6, 1.5]
    y[8] *= 0.9
    coef, kept = robust_nnls_fit(x, y)
    assert sorted(np.flatnonzero(~kept)) == slow and kept[8]
    assert np.abs((x @ coef - x @ c) / (x @ c)).max() < 0.05
    plain = nnls_fit(x, y)
    assert np.abs((x @ plain - x @ c) / (x @ c)).max() > 0.05  # what the robust fit avoids
    coef, kept = robust_nnls_fit(x, x @ c)  # clean readings: nothing set aside
    assert kept.all() and coef == pytest.approx(c, rel=1e-6)


def test_fit_recovers_a_known_cost_model_and_predicts_held_out_networks():
    rng = np.random.default_rng(5)
    time_costs = {"conv1x1.flops": 3e-11, "gconv.moved": 4e-9, "dwconv.moved": 9e-9,
                  "conv.flops": 8e-11, "elems": 2e-9, "silu.elems": 3e-9,
                  "calls": 2e-5, "params": 1e-9, "step": 1e-3}  # fmt: skip
    mem_costs = {"saved.elems": 4.0, "params": 12.0, "step": 2e6}
    rows = _rows(_specs(), time_costs, mem_costs, noise=0.01, rng=rng)
    prof = fit_ops_profile(rows, batch=BATCH, name="synthetic")
    assert prof.kind == "ops" and prof.batch == BATCH and prof.n == len(rows)
    assert prof.fit["time"]["loo_mean_rel_error"] < 0.03
    assert prof.fit["memory"]["max_rel_error"] < 1e-6  # noise-free: exact
    assert {"gconv", "dwconv", "silu", "relu", "se"} <= set(prof.kinds)
    # networks the fit never saw, priced from their own operations
    held = [get_model("RegNetY-800MF").with_resolution(64), get_model("EfficientNet-B1")
            .with_resolution(48), scale_spec(get_model("RegNetX-400MF").with_resolution(40), "dWr", 4)]  # fmt: skip
    for row, spec in zip(_rows(held, time_costs, mem_costs), held, strict=True):
        got = prof.price(spec)
        assert got["seconds_per_step"] == pytest.approx(row["seconds_per_step"], rel=0.05)
        assert got["memory_bytes"] == pytest.approx(row["memory_bytes"], rel=1e-6)
        assert got["seconds_per_image"] == pytest.approx(got["seconds_per_step"] / BATCH)
    # memory grows with the batch by the per-image part only
    spec = held[0]
    m8, m16 = prof.price(spec)["memory_bytes"], prof.price(spec, 16)["memory_bytes"]
    per_image = sum(mem_costs[k] * feature_matrix(op_counts(spec), 1, MEMORY_FEATURES, [k])[0]
                    for k in ("saved.elems",))  # fmt: skip
    assert m16 - m8 == pytest.approx(8 * float(per_image), rel=1e-6)


def test_vectorized_pricing_equals_scalar_and_unknown_kinds_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    costs = _true_costs(["conv1x1.flops", "gconv.flops", "bn.elems", "calls", "step"], rng)
    specs = [s for s in _specs(with_effnet=False) if s.block != "Z"]  # no depthwise convs
    prof = fit_ops_profile(_rows(specs, costs, {"step": 1e6}), batch=BATCH)
    assert "dwconv" not in prof.kinds
    base = get_model("RegNetY-400MF").stages()
    depths = np.array([base.depths, [2, 3, 5, 1], [1, 1, 1, 1]])
    widths = np.array([base.widths, [64, 128, 256, 512], [48, 96, 192, 384]])
    groups = np.array([base.group_widths] * 3)
    batch = stages_ops_batch(base, depths, widths, groups, [64, 48, 32])
    priced = prof.price(batch)
    for i in range(3):
        one = base.replace(
            depths=tuple(depths[i]), widths=tuple(widths[i]), resolution=(64, 48, 32)[i]
        )
        assert prof.price(one)["seconds_per_step"] == pytest.approx(priced["seconds_per_step"][i])
    with pytest.raises(ProfileError, match="dwconv.*recalibrate"):
        prof.price(get_model("EfficientNet-B0"))
    path = tmp_path / "ops.json"
    prof.save(path)
    again = load(path)
    assert again.kind == "ops" and again.costs == prof.costs and again.kinds == prof.kinds
    assert again.price(base)["seconds_per_step"] == pytest.approx(
        prof.price(base)["seconds_per_step"]
    )


def test_old_linear_profiles_keep_loading_and_bad_ops_files_are_refused(tmp_path):
    paper = load_profile("v100x8-paper")
    assert paper.kind == "linear" and paper.costs == {} and paper.memory == {}
    spec = get_model("RegNetY-4.0GF")
    priced = paper.price(spec)
    # RegNetY-4.0GF: 3,973,301,344 flops and 12,287,200 acts (pycls' published counts), with
    # the profile's coefficients typed by hand (docs/planner.md rounds them to 0.53, 0.35, 0.54)
    by_hand = 0.52652 + 0.345525 * 12.2872 + 0.541019 * 3.973301344
    assert priced["runtime"] == pytest.approx(by_hand, rel=1e-4)
    assert priced["memory_bytes"] is None
    old = {"name": "old", "c0": 0.1, "c_acts": 1e-8, "c_flops": 1e-10, "unit": "s", "n": 3}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load(tmp_path / "old.json").kind == "linear"
    good = {**old, "kind": "ops", "batch": 8, "kinds": list(KINDS), "costs": {"step": 0.1}}
    for change, needle in (
        ({"kind": "quantum"}, "kind must be"),
        ({"batch": None}, "batch >= 1"),
        ({"costs": {"warp.flops": 1.0}}, "unknown costs feature"),
        ({"costs": {"step": -1}}, "costs.step must be >= 0, got -1"),
        ({"kinds": ["teleport"]}, "kinds must be"),
    ):
        (tmp_path / "bad.json").write_text(json.dumps({**good, **change}))
        with pytest.raises(ProfileError, match=needle):
            load(tmp_path / "bad.json")
    (tmp_path / "good.json").write_text(json.dumps(good))
    assert load(tmp_path / "good.json").price(spec)["seconds_per_step"] == pytest.approx(0.1)


def test_parse_bytes():
    assert parse_bytes("12GB") == 12 * 10**9 and parse_bytes("800MB") == 8 * 10**8
    assert parse_bytes("1.5e10") == 15 * 10**9 and parse_bytes("2GiB") == 2 * 2**30
    for bad in ("12XB", "GB", "-1GB", "0", "1Gi"):
        with pytest.raises(UnitError):
            parse_bytes(bad)


def test_memory_fit_keeps_at_least_the_precisions_bytes_per_saved_element():
    """Rows whose peaks put fewer bytes on a saved element than the precision holds (here 3,
    with more on parameters) fit 3 freely, but an fp32 calibration keeps 4 (one float each):
    the diverse set cannot separate the two costs (docs/planner.md, the operation model)."""
    mem_costs = {"saved.elems": 3.0, "params": 14.0, "step": 1e6}
    rows = _rows(_specs(), {"step": 1e-3, "calls": 1e-5}, mem_costs)
    free = fit_ops_profile(rows, batch=BATCH)
    fp32 = fit_ops_profile(rows, batch=BATCH, precision="fp32")
    amp = fit_ops_profile(rows, batch=BATCH, precision="amp")
    assert free.memory["saved.elems"] == pytest.approx(3.0, rel=1e-6)
    assert fp32.memory["saved.elems"] == pytest.approx(4.0) and fp32.memory["params"] < 14.0
    assert amp.memory["saved.elems"] == pytest.approx(3.0, rel=1e-6)  # 2 bytes: not binding
    assert fp32.fit["memory"]["loo_mean_rel_error"] > free.fit["memory"]["loo_mean_rel_error"]
    x = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    assert nnls_fit(x, x @ [1.0, 5.0], floor=np.array([2.0, 0.0]))[0] == pytest.approx(2.0)
