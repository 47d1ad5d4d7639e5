"""The solver reaches small targets: every strategy of the cpu-quick preset lands inside its
window from every candidate base (the base-regime samples, to the intermediate and top
regimes) and every hybrid source (the intermediate samples, to the top) — checked through
the planner, without training. Depth fine-tuning is reported and reproducible."""

from __future__ import annotations

import pytest

from planner.scale import scale_spec
from planner.solve import solve, solve_many
from spaces.complexity import complexity
from trials.compare.candidates import round_a
from trials.compare.preset import load_preset
from trials.data.catalogue import dataset_info


@pytest.fixture(scope="module")
def preset_models():
    preset = load_preset("cpu-quick")
    info = dataset_info(preset.dataset, check=False)
    cands = round_a(preset, (info.channels, info.classes))
    by_level = {}
    for c in cands:
        by_level.setdefault(c.tags["level"], []).append(c.spec)
    return preset, by_level


def test_every_cpu_quick_strategy_lands_in_its_window(preset_models):
    preset, by_level = preset_models
    jobs = [(s, lv) for s in by_level["base"] for lv in ("intermediate", "top")]
    jobs += [(s, "top") for s in by_level["intermediate"]]
    off = []
    for spec, level in jobs:
        target = preset.regimes[level]
        for sol in solve_many(spec, preset.strategies, target, preset.tolerance):
            assert sol.flops == complexity(sol.spec).flops
            if not abs(sol.flops / target - 1) <= preset.tolerance:
                off.append((sol.strategy.name, level, round(sol.miss, 4)))
    assert not off
    assert len(jobs) * len(preset.strategies) == 45


def test_depth_finetune_is_reported_and_reproducible(preset_models):
    preset, by_level = preset_models
    tuned = []
    for spec in by_level["base"]:
        sol = solve(spec, "dWr", preset.regimes["top"], preset.tolerance)
        if "depth_steps" in sol.finetuned:
            tuned.append((spec, sol))
    assert tuned, "dWr to the top regime needs the depth knob at 28 px"
    spec, sol = tuned[0]
    ft = sol.finetuned
    knobs = {k: ft[k] for k in ("width_scale", "group_scale", "resolution_steps") if k in ft}
    again = scale_spec(spec, "dWr", sol.s, depth_steps=ft["depth_steps"], **knobs)
    assert again == sol.spec
    assert scale_spec(spec, "dWr", sol.s, **knobs).depths != sol.spec.depths  # depth moved
    assert all(abs(d) <= 1 for d in ft["depth_steps"]) and sum(map(abs, ft["depth_steps"])) <= 2


def test_unreachable_target_is_reported_honestly(preset_models):
    preset, by_level = preset_models
    target = preset.regimes["top"] + 1  # with tolerance 0 only an exact hit would count
    sol = solve(by_level["base"][0], "w", target, tolerance=0.0)
    assert not sol.on_target and sol.flops != target
    assert sol.below < target < sol.above
