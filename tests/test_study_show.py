"""`fastscale study show` on a comparison's directory: a compact table that fits a terminal
(the tags that matter, one network column), not 29 columns cut to 4 characters."""

from __future__ import annotations

from trials.cli.study_show import show_rows
from trials.study.live_view import short_name

from .test_report import make_results


def test_compare_rows_are_compact():
    df = make_results()
    spec = {"block": "Y", "depth": 13, "w0": 24, "wa": 36.44, "wm": 2.49, "group_width": 8}
    for k, v in {**spec, "resolution": 28, "source": "abcdef0123", "failure": None}.items():
        df[k] = [v] * len(df)
    df.loc[df["status"] == "failed", "failure"] = (
        "Traceback (most recent call last):\n  x\nValueError: bad"
    )
    records, cols = show_rows(df)
    assert cols[:8] == ["key", "status", "error %", "flops", "params", "acts", "epoch s", "method"]
    assert {"regime", "strategy", "phase", "seed", "network", "failure"} <= set(cols)
    assert "w0" not in cols and "source" not in cols and "model" not in cols
    assert len(cols) <= 16
    first = records[0]
    assert first["flops"] == "5.0M" and first["error %"] == 20.0
    assert (
        first["network"]
        == short_name({**spec, "resolution": 28})
        == ("Y d13 w0=24 wa=36.44 wm=2.49 g=8 r28")
    )
    assert next(r for r in records if r["status"] == "failed")["failure"] == "ValueError: bad"


def test_network_names_read_the_same_from_a_table_that_holds_floats():
    """A results column with a missing value becomes float (depth 20.0): names stay 'd20'."""
    spec = {"block": "Y", "depth": 20, "w0": 32, "wa": 37.8, "wm": 2.556, "group_width": 104}
    as_floats = {k: float(v) if k != "block" else v for k, v in spec.items()}
    assert short_name({**as_floats, "resolution": 16.0}) == short_name({**spec, "resolution": 16})
    assert short_name({**spec, "resolution": 16}) == "Y d20 w0=32 wa=37.8 wm=2.556 g=104 r16"


def _plain_results():
    """A plain (non-comparison) study's results: done, stopped, failed and pending rows."""
    import pandas as pd

    return pd.DataFrame(
        {
            "key": ["a", "b", "c", "d", "e"],
            "status": ["done", "failed", "done", "stopped", "pending"],
            "error": [0.30, None, 0.21, 0.05, None],
            "flops": [5_000_000, 6_000_000, 7_000_000, 8_000_000, 9_000_000],
            "params": [1, 2, 3, 4, 5],
            "acts": [1, 2, 3, 4, 5],
            "failure": [None, "ValueError: bad", None, None, None],
        }
    )


def test_plain_study_sorts_by_error_and_marks_the_best():
    records, cols = show_rows(_plain_results())
    # done by error, then the stopped one (its error is at an earlier epoch: not the best
    # although lower), then failed and pending
    assert [r["key"] for r in records] == ["c", "a", "d", "b", "e"]
    assert [r["best"] for r in records] == ["best", "", "", "", ""]
    assert cols.index("status") < cols.index("best") < cols.index("error")


def test_best_is_a_finished_candidate_or_none():
    from trials.study.results import by_error

    ranked = by_error(_plain_results())
    assert ranked["best"].tolist() == [True, False, False, False, False]
    nothing_done = _plain_results().assign(status="pending")
    assert not by_error(nothing_done)["best"].any()
