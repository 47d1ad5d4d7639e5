"""Scaling ResNets: every strategy keeps a valid, buildable network whose batch count equals
the literal walk; the rs rule is the RS family's own fit; plans land on target."""

import numpy as np
import pytest

from planner.batch import batch_complexity, scale_arrays
from planner.plan import plan, schedule_lean
from planner.scale import scale_spec
from planner.solve import solve
from planner.strategies import RS_DEPTH_SHARE, get_strategy
from spaces import complexity, get_model, list_models

STRATEGIES = ["d", "w", "r", "dw", "dwr", "dWr", "rs", "effnet", "0.5", "d1_w8_g8_r1", "w1_r1"]


def _strategy(name):
    return get_strategy(alpha=float(name)) if name[0].isdigit() else get_strategy(name)


@pytest.mark.parametrize("base", ["ResNet-18", "ResNet-50", "ResNeXt-50-32x4d", "ResNet-RS-50"])
@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_scales_a_resnet_to_a_valid_network(base, name):
    spec = get_model(base)
    strat = _strategy(name)
    for s in (0.5, 2.0, 5.3):
        scaled = scale_spec(spec, strat, s)  # validated StageSpec
        assert scaled.block == spec.block and scaled.stem == spec.stem
        assert scaled.shortcut == spec.shortcut and scaled.stem_width == spec.stem_width
        c = scale_arrays(spec.stages(), *strat.factors(np.array([s])))
        counts = batch_complexity(spec.stages(), c)
        assert tuple(int(x[0]) for x in counts) == tuple(complexity(scaled))


def test_one_group_stays_one_group_when_widths_scale():
    for base in ("ResNet-18", "ResNet-50"):
        for s in (1.7, 3.1, 9.0):
            t = scale_spec(get_model(base), "w", s)
            inner = [int(round(w * b)) for w, b in zip(t.widths, t.bottlenecks, strict=True)]
            assert list(t.group_widths) == inner  # ResNet-50's 3x3 convs stay dense


def test_resnext_group_width_scales_like_width():
    t = scale_spec(get_model("ResNeXt-50-32x4d"), "w", 4.0)
    assert t.group_widths == (8, 16, 32, 64)  # 4 -> 8: √4 = 2x, rounded to the quantum


def test_rs_rule_is_the_fit_of_the_rs_family():
    """Least squares through the origin of log depth and log resolution factors against the
    log flop factor over RS-50...RS-420, normalised so flops grow as s^1."""
    names = [n for n in list_models("ResNet-RS-*")]
    base = get_model(names[0])
    f0 = complexity(base).flops
    ls, ld, lr = [], [], []
    for n in names[1:]:
        m = get_model(n)
        ls.append(np.log(complexity(m).flops / f0))
        ld.append(np.log(sum(m.depths) / sum(base.depths)))
        lr.append(np.log(m.resolution / base.resolution))
    ls, ld, lr = map(np.asarray, (ls, ld, lr))
    e_d, e_r = ls @ ld / (ls @ ls), ls @ lr / (ls @ ls)
    assert abs(e_d / (e_d + 2 * e_r) - RS_DEPTH_SHARE) < 0.005
    e = get_strategy("rs").exponents
    assert e[1] == e[2] == 0 and abs(e[0] + 2 * e[3] - 1) < 1e-12


@pytest.mark.parametrize("name", ["w", "dwr", "dWr", "rs"])
def test_resnet_rs_50_to_16gf_lands_within_one_percent(name):
    sol = solve(get_model("ResNet-RS-50"), name, 16e9)
    assert sol.on_target and abs(sol.flops / 16e9 - 1) <= 0.01


def test_plan_on_a_resnet_includes_rs_and_respects_budgets():
    df = plan(get_model("ResNet-RS-50"), "16GF", max_acts=40e6)
    assert "rs" in set(df["strategy"]) and (df["acts"] <= 40e6).all()
    assert "rs" not in set(plan(get_model("RegNetY-800MF"), "3.2GF")["strategy"])


def test_epochs_switch_the_ranking_lean():
    base = get_model("ResNet-RS-50")
    short = plan(base, "16GF", epochs=10)
    long = plan(base, "16GF", epochs=350)
    paper = plan(base, "16GF", epochs=100)
    assert short.iloc[0]["strategy"] == "w" and long.iloc[0]["strategy"] == "d"
    assert list(paper["strategy"]) == list(plan(base, "16GF")["strategy"])
    assert [schedule_lean(e) for e in (None, 10, 100, 350)] == ["paper", "width", "paper", "depth"]


@pytest.mark.parametrize("base", ["ResNet-18", "ResNeXt-50-32x4d", "ResNet-RS-50"])
def test_scaled_resnet_builds_with_the_analytic_counts(base):
    import torch

    from spaces.build import build_model, measure_complexity

    torch.set_num_threads(1)
    spec = scale_spec(get_model(base, resolution=32, num_classes=10), "dWr", 0.3)
    assert measure_complexity(build_model(spec), 32) == complexity(spec)


def test_compare_scales_a_resnet_base():
    """`fastscale compare` with {model: ResNet-18} as the base: round B scales the ResNet to
    each regime with every strategy, on target, as a ResNet (pure: no training)."""
    import pandas as pd

    from tests.test_compare import FMNIST, tiny
    from trials.compare.candidates import round_a, round_b
    from trials.compare.preset import parse_preset

    regimes = {"base": "8MF", "intermediate": "32MF", "top": "128MF"}
    preset = parse_preset(tiny(base={"regnety": {"model": "ResNet-18"}}, regimes=regimes), "t")
    a = round_a(preset, FMNIST)
    assert a[0].spec.block == "RB" and a[0].spec.resolution == 16
    res = pd.DataFrame(
        [
            {"key": f"k{i}", "status": "done", "error": 0.5 - 0.01 * i, **c.tags}
            for i, c in enumerate(a)
        ]
    )
    scaled = [c for c in round_b(preset, FMNIST, res, a) if c.tags["method"] == "scaling"]
    assert len(scaled) == 6
    for c in scaled:
        assert c.spec.block == "RB" and c.spec.stem == "resnet"
        flops = complexity(c.spec).flops
        assert abs(flops / preset.regimes[c.tags["level"]] - 1) <= preset.tolerance


@pytest.mark.parametrize("epochs", ["0", "-3", "nan", "inf"])
def test_plan_refuses_a_bad_epochs_in_one_line(capsys, epochs):
    from trials.cli import main

    code = main(["plan", "ResNet-RS-50", "--target", "16GF", "--epochs", epochs])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "epochs must be a positive number" in err
