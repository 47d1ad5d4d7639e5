"""Plans: budgets honoured, deterministic documented ranking, binding budget named."""

import json

import numpy as np
import pytest

from planner.plan import PlanError, accuracy_tier, candidate_strategies, plan
from planner.strategies import get_strategy
from spaces.registry import get_model

BASE = get_model("RegNetY-4.0GF")


@pytest.fixture(scope="module")
def full():
    return plan(BASE, "16GF", include_all=True, profile="v100x8-paper")


def test_default_plan_lists_on_target_plans_with_the_contract_columns(full):
    df = plan(BASE, 16e9)
    for col in (
        "strategy", "alpha", "factor", "s", "depth_factor", "width_factor", "resolution_factor",
        "depths", "widths", "group_widths", "resolution", "flops", "params", "acts",
        "predicted_runtime", "on_target", "miss", "fits", "spec",
    ):  # fmt: skip
        assert col in df.columns, col
    assert df["on_target"].all() and df["fits"].all()
    assert list(df["rank"]) == list(range(1, len(df) + 1))
    assert df["predicted_runtime"].isna().all()  # no profile, no runtime
    # 21 α values + d, r, dw, wr, dwr, effnet (w, dr, dWr are the α = 1, 0, 0.8 rows)
    assert len(full) == 27 and {"dWr", "w", "dr", "dwr", "effnet"} <= set(full["strategy"])
    assert full.loc[full["strategy"] == "dWr", "alpha"].item() == pytest.approx(0.8)


def test_ranking_follows_the_documented_key(full):
    tiers = full["tier"].to_numpy()
    key = list(
        zip(
            ~full["fits"], ~full["on_target"], tiers,
            [get_strategy(n).width_share if not n.startswith("alpha=") else a
             for n, a in zip(full["strategy"], full["alpha"], strict=True)],
            full["miss"].abs(), full["acts"], full["strategy"], strict=True,
        )
    )  # fmt: skip
    assert key == sorted(key)
    top = full.iloc[0]
    assert top["strategy"] == "dr" and top["tier"] == 0  # most accuracy-leaning on the plateau
    assert accuracy_tier(get_strategy("w")) == 2 and accuracy_tier(get_strategy("effnet")) == 0
    assert accuracy_tier(get_strategy(alpha=0.9)) == 1 and accuracy_tier(get_strategy("d")) == 2


def test_ranking_is_deterministic_and_independent_of_input_order():
    a = plan(BASE, "16GF", alphas=[0, 0.4, 0.8, 1], strategies=["dwr", "effnet", "d"])
    b = plan(BASE, "16GF", alphas=[1, 0.8, 0.4, 0], strategies=["d", "effnet", "dwr"])
    cols = ["rank", "strategy", "flops", "acts", "depths", "widths", "resolution"]
    assert a[cols].equals(b[cols])


@pytest.mark.parametrize(
    "budget, column",
    [
        ({"max_acts": "30M"}, "acts"),
        ({"max_params": 60e6}, "params"),
        ({"max_runtime": 19.0}, "predicted_runtime"),
    ],
)
def test_budgets_are_honoured(full, budget, column):
    df = plan(BASE, "16GF", profile="v100x8-paper", **budget)
    limit = {"max_acts": 30e6, "max_params": 60e6, "max_runtime": 19.0}[next(iter(budget))]
    assert (df[column] <= limit).all() and df["on_target"].all()
    # nothing that fits was dropped
    fitting = full[(full[column] <= limit) & full["on_target"]]
    assert sorted(df["strategy"]) == sorted(fitting["strategy"])
    # a tight acts/runtime budget moves the top choice towards larger α (faster)
    if column != "params":
        assert df.iloc[0]["acts"] < full.iloc[0]["acts"]


def test_predicted_runtime_uses_the_profile(tmp_path):
    # round coefficients: 1 min + 1 min per M acts + 1 min per GF, so every plan's runtime
    # is known by hand from its own acts and flops
    path = tmp_path / "round.json"
    path.write_text(json.dumps({"name": "round", "c0": 1.0, "c_acts": 1e-6, "c_flops": 1e-9,
                                "unit": "min/epoch", "n": 3}))  # fmt: skip
    df = plan(BASE, "16GF", include_all=True, profile=str(path))
    assert len(df) > 3
    for _, row in df.iterrows():
        assert row["predicted_runtime"] == pytest.approx(1 + row["acts"] / 1e6 + row["flops"] / 1e9)
    # the shipped profile: its coefficients typed by hand (0.53 min + 0.35 min per M acts +
    # 0.54 min per GF in docs/planner.md, here to 5 digits), on the top plan to 16GF
    top = plan(BASE, "16GF", include_all=True, profile="v100x8-paper").iloc[0]
    by_hand = 0.5265 + 0.34553 * top["acts"] / 1e6 + 0.54102 * top["flops"] / 1e9
    assert top["predicted_runtime"] == pytest.approx(by_hand, rel=1e-3)


def test_unsatisfiable_budget_names_the_binding_one():
    with pytest.raises(PlanError) as err:
        plan(BASE, "16GF", max_acts="20M", max_params="1G")
    msg = str(err.value)
    full = plan(BASE, "16GF", include_all=True)
    nearest = full[full["on_target"]].sort_values("acts").iloc[0]
    assert msg.startswith(
        f"--max-acts (max_acts) 20.0M: the smallest on-target plan, {nearest['strategy']} at "
        f"s={nearest['s']:.3g}, needs "
    )
    assert msg.endswith("%); raise the budget, or use --all (include_all) to see every plan")
    assert "max_params" not in msg and "\n" not in msg
    with pytest.raises(PlanError, match="max_runtime"):
        plan(BASE, "16GF", max_runtime=1.0, profile="v100x8-paper")


def test_jointly_unsatisfiable_budgets(full):
    on = full[full["on_target"]]
    acts_cut = float(np.median(on["acts"]))
    params_cut = float(on.loc[on["acts"] > acts_cut, "params"].min())
    assert (on.loc[on["acts"] <= acts_cut, "params"] > params_cut).all()  # the premise
    with pytest.raises(PlanError, match="all budgets at once"):
        plan(BASE, "16GF", max_acts=acts_cut, max_params=params_cut)


def test_include_all_keeps_misses_and_over_budget_rows():
    df = plan(BASE, "16GF", max_acts="25M", tolerance=0.0, include_all=True)
    assert (~df["fits"]).any() and (~df["on_target"]).any()
    assert df["fits"].to_numpy()[: df["fits"].sum()].all()  # fitting rows first


def test_candidate_merging():
    names = [s.name for s in candidate_strategies([0.8, 0.5], ["dWr", "w", "effnet"])]
    assert names == ["dWr", "alpha=0.5", "w", "effnet"]


def test_bad_requests():
    with pytest.raises(PlanError, match="profile"):
        plan(BASE, "16GF", max_runtime=5)
    with pytest.raises(PlanError, match=r"\[0, 1\]"):
        plan(BASE, "16GF", alphas=[0.5, 1.5])
    with pytest.raises(PlanError, match="positive"):
        plan(BASE, "16GF", max_acts=-3)


def test_plan_table_is_the_dataframe_without_pandas():
    """`plan_table` (what the CLI reads) and `plan` (its DataFrame) hold the same plans."""
    from planner.plan import COLUMNS, plan_table

    table = plan_table(BASE, "16GF", max_acts="28M", include_all=True, profile="v100x8-paper")
    df = plan(BASE, "16GF", max_acts="28M", include_all=True, profile="v100x8-paper")
    assert [list(r) for r in table.rows] == [COLUMNS] * len(df) and table.attrs == df.attrs
    assert [r["strategy"] for r in table.rows] == list(df["strategy"])
    assert [r["rank"] for r in table.rows] == list(range(1, len(df) + 1))
    fits = [r["fits"] for r in table.rows]
    assert fits == sorted(fits, reverse=True) and True in fits and False in fits
    assert table.attrs["recommendation"]["rank"] in [r["rank"] for r in table.rows if r["fits"]]
