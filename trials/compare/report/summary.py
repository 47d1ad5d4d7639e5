"""Everything the comparison report shows, as plain data: the analysis (`analysis`) and the
sentences that state it (`text`), also written to summary.json."""

from __future__ import annotations

import pandas as pd

from spaces.errors import FastscaleError
from trials.compare.report.analysis import (
    contenders,
    correlations,
    normalize,
    off_target,
    runtime_source,
    seed_spread,
    verdict,
)
from trials.compare.report.text import headline, paper_agreement, stopped_early, verdict_sentences


class ReportError(FastscaleError):
    """Nothing to report: no trial of the comparison completed."""


def analyze(results: pd.DataFrame, meta: dict | None = None) -> dict:
    """Everything the report shows, as plain data (also written to summary.json)."""
    df = normalize(results, meta)
    if df.empty:
        failed = int((results.get("status") == "failed").sum()) if "status" in results else 0
        raise ReportError(
            f"no completed trials to report on ({len(results)} trials, {failed} failed); "
            "`fastscale study show DIR` lists each failure"
        )
    rows = contenders(df)
    tolerance = float((meta or {}).get("config", {}).get("tolerance", 0.02))
    for r in rows:
        r["off_target"] = bool(abs(r["regime_miss"]) > tolerance * (1 + 1e-9))
    spread = seed_spread(df)
    verdicts = verdict(rows, spread)
    out = {
        "headline": headline(verdicts, spread),
        "off_target": off_target(rows, tolerance),
        "rows": rows,
        "spread": spread,
        "verdict": verdicts,
        "runtime_source": runtime_source(meta),
        "correlations": correlations(df),
        "paper": paper_agreement(verdicts, spread),
        "n_done": int(len(df)),
        "n_failed": int((results["status"] == "failed").sum()) if "status" in results else 0,
        "n_stopped": int((results["status"] == "stopped").sum()) if "status" in results else 0,
    }
    out["sentences"] = verdict_sentences(out) + stopped_early(results)
    return out
