"""The comparison report: Tables 7/8-style summary, figures and a verdict computed from results.

Input is the study's results table (`trials.study.load_results`): one row per trained
candidate with key, status, error, flops, params, acts, epoch_time, the spec fields and the
tags that `trials.compare.candidates` sets (method, space, regime, level, strategy, phase, model).
`analyze` is pure pandas/numpy; `build_report` adds the figures and writes `report.html`
(images embedded as data URIs, so the HTML alone is self-contained; the PNGs stay beside it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from planner import profiles
from spaces.units import UnitError, parse_quantity

METHODS = ("base", "search", "scaling", "hybrid")
LEVELS = ("base", "intermediate", "top")
# Seed-noise thresholds: a margin of >= 2 standard errors is "clear", >= 1 "marginal".
CLEAR_Z, MARGINAL_Z = 2.0, 1.0
PAPER_FINDINGS = (
    "Paper (§6.4): at 4GF the searched model beats the scaled one (RegNetY by 0.6%, RegNetZ by "
    "0.1%); at 16GF the hybrid (search at 4GF, scale ×4) beats scaling from 500MF by 0.3%; "
    "fast scaling dWr is about as accurate as dwr and nearly as fast as w."
)


def normalize(results: pd.DataFrame, meta: dict | None = None) -> pd.DataFrame:
    """Done rows with every tag column present; the level comes from the tag or the regimes."""
    meta = meta or {}
    df = results.copy()
    for col, default in (
        ("method", "search"),
        ("space", ""),
        ("strategy", ""),
        ("phase", "first"),
        ("level", ""),
        ("regime", ""),
    ):
        if col not in df:
            df[col] = default
        df[col] = df[col].fillna(default).astype(str)
    for col in ("error", "flops", "params", "acts", "epoch_time"):
        if col not in df:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if "model" not in df:
        df["model"] = df["key"].astype(str) if "key" in df else df.index.astype(str)
    df["runtime"] = _runtime(df, meta)
    if "status" in df:
        df = df[df["status"] == "done"]
    df = df[np.isfinite(df["error"])].copy()
    levels = {str(v): k for k, v in (meta.get("regimes") or {}).items()}
    if levels:
        df["level"] = [
            lv or levels.get(rg, "") for lv, rg in zip(df["level"], df["regime"], strict=True)
        ]
    missing = df["level"] == ""
    if missing.any():  # infer: the largest regime is the top, base-method rows are the base
        order = sorted(set(df["regime"]), key=lambda r: df.loc[df["regime"] == r, "flops"].median())
        guess = {r: ("top" if r == order[-1] else "intermediate") for r in order}
        df.loc[missing, "level"] = [
            "base" if m == "base" else guess[r]
            for m, r in zip(df.loc[missing, "method"], df.loc[missing, "regime"], strict=True)
        ]
    return df


def _runtime(df: pd.DataFrame, meta: dict) -> pd.Series:
    """Seconds per epoch to compare models by: from the one timing pass over every model
    (`meta["timing"]`: model -> seconds per image, same clock and threads for all) times the
    epoch's images, else the trainer's own epoch time (measured whenever each trial ran)."""
    timing = (meta.get("timing") or {}).get("seconds_per_image") or {}
    if not timing:
        return df["epoch_time"]
    images = float(meta["timing"].get("epoch_images") or 0)
    fair = df["model"].map(lambda m: timing.get(str(m), np.nan)).astype(float) * images
    return fair.where(np.isfinite(fair), df["epoch_time"])


def runtime_source(meta: dict | None) -> str:
    """What the report's epoch times are, in words."""
    t = (meta or {}).get("timing") or {}
    if t.get("seconds_per_image"):
        return (
            f"one timing pass after training, every model the same way ({t.get('clock')} clock, "
            f"{t.get('threads')} thread(s), batch {t.get('batch_size')}), in seconds per epoch "
            f"of {t.get('epoch_images')} images"
        )
    return (
        "each trainer's own epoch time, measured while it trained: on a shared machine the "
        "load differs between trials, so compare small differences with care"
    )


def seed_spread(df: pd.DataFrame) -> dict:
    """Pooled seed-to-seed std of the error over models trained with several seeds.

    Rows of one model (same `model` tag and schedule, else phase) differ only in the training
    seed; the pooled variance is sum of squared deviations over sum of (n_i - 1). A first-
    round best-of-N row joins its model's group when the schedules match, which if anything
    inflates the spread (conservative).
    """
    ss, dof, models = 0.0, 0, 0
    by = ["model", "schedule"] if "schedule" in df else ["model", "phase"]
    for _, g in df.groupby(by):
        if len(g) >= 2:
            e = g["error"].to_numpy(float)
            ss += float(((e - e.mean()) ** 2).sum())
            dof += len(e) - 1
            models += 1
    if dof == 0:
        return {
            "std": None,
            "dof": 0,
            "models": 0,
            "source": "no model was trained with more than one seed, so the seed-to-seed "
            "spread is not estimated; margins cannot be judged against noise",
        }
    std = math.sqrt(ss / dof)
    return {
        "std": std,
        "dof": dof,
        "models": models,
        "source": f"pooled std of the error over {models} model(s) each retrained with "
        f"several seeds ({dof} degrees of freedom)",
    }


def _stats(g: pd.DataFrame) -> tuple[float, float, int]:
    e = g["error"].to_numpy(float)
    return float(e.mean()), float(e.std(ddof=1)) if len(e) > 1 else float("nan"), len(e)


def _miss(flops, regime: str) -> float:
    """Realised flops relative to the regime's nominal flops (0.05 = 5 % above)."""

    try:
        return float(flops) / parse_quantity(regime) - 1
    except (UnitError, ValueError, ZeroDivisionError):
        return float("nan")


def off_target(rows: list[dict], tolerance: float) -> list[str]:
    """Sentences for contenders whose flops miss their regime's window (unfair comparison)."""
    out = []
    for r in rows:
        if abs(r["regime_miss"]) > tolerance * (1 + 1e-9):
            what = f"{r['method']} {r['strategy']}".strip()
            out.append(
                f"{r['space']} {what} at {r['regime']} has {r['flops'] / 1e6:.3g}M flops "
                f"({r['regime_miss'] * 100:+.1f}% vs the regime, window ±{tolerance * 100:g}%): "
                "no network of this strategy landed inside the window, so it competes at "
                "different flops."
            )
    return out


def pick_best(g: pd.DataFrame, used: set) -> pd.Series:
    """Lowest error; on a tie, the model the comparison went on to scale (its `source`)."""
    order = np.lexsort((~g["model"].isin(used).to_numpy(), g["error"].to_numpy(float)))
    return g.iloc[order[0]]


def contenders(df: pd.DataFrame) -> list[dict]:
    """One row per (space, level, method, strategy): the model, its complexity and errors.

    For search the row is the best of the population (by first-phase error) with the
    population's mean ± std; `score` is the mean over final-phase seeds where they exist
    (unbiased by the best-of-N selection), else the first-phase error.
    """
    rows = []
    used = set(df["source"]) if "source" in df else set()
    first = df[df["phase"] == "first"]
    final = df[df["phase"] == "final"]
    for (space, level, method), g in first.groupby(["space", "level", "method"], sort=False):
        groups = [("", g)] if method in ("search", "base") else list(g.groupby("strategy"))
        for strategy, gg in groups:
            best = pick_best(gg, used)
            mean, std, n = _stats(gg)
            fin = final[final["model"] == best["model"]]
            fmean, fstd, fn = _stats(fin) if len(fin) else (float("nan"), float("nan"), 0)
            rows.append(
                {
                    "space": space,
                    "level": level,
                    "regime": best["regime"],
                    "method": method,
                    "strategy": strategy,
                    "model": best["model"],
                    "flops": float(best["flops"]),
                    "regime_miss": _miss(best["flops"], best["regime"]),
                    "params": float(best["params"]),
                    "acts": float(best["acts"]),
                    "epoch_time": float(best["epoch_time"]),
                    "runtime": float(best["runtime"]),
                    "cost": _cost(first, space, method, best),
                    "error": float(best["error"]),
                    "pop_mean": mean if method == "search" else float("nan"),
                    "pop_std": std if method == "search" else float("nan"),
                    "pop_n": n if method == "search" else 1,
                    "final_mean": fmean,
                    "final_std": fstd,
                    "final_n": fn,
                    "score": fmean if fn else float(best["error"]),
                    "score_n": fn if fn else 1,
                }
            )
    order = {m: i for i, m in enumerate(METHODS)}
    lv = {m: i for i, m in enumerate(LEVELS)}
    rows.sort(key=lambda r: (r["space"], lv.get(r["level"], 9), order.get(r["method"], 9)))
    return rows


def _cost(first: pd.DataFrame, space: str, method: str, pick: pd.Series) -> float:
    """Training seconds (runtime x epochs) it took to obtain `pick`: search trains its whole
    population at the regime; scaling the base's search plus the scaled model; hybrid the
    intermediate search plus the scaled model."""
    rows = first[first["space"] == space]

    def spent(sub):
        epochs = pd.to_numeric(sub.get("schedule", pd.Series(1.0, index=sub.index)), "coerce")
        return float((sub["runtime"] * epochs.fillna(1.0)).sum())

    own = spent(pick.to_frame().T)
    if method == "search":
        return spent(rows[(rows["method"] == "search") & (rows["level"] == pick["level"])])
    if method == "scaling":
        return own + spent(rows[rows["level"] == "base"])
    if method == "hybrid":
        inter = rows[(rows["method"] == "search") & (rows["level"] == "intermediate")]
        return own + spent(inter)
    return own


def judge(margin: float, sigma: float | None, n1: int, n2: int) -> tuple[float | None, str]:
    if sigma is None or not sigma > 0:
        return None, "spread unknown"
    z = margin / (sigma * math.sqrt(1 / n1 + 1 / n2))
    if z >= CLEAR_Z:
        return z, "clear"
    return z, "marginal" if z >= MARGINAL_Z else "within seed noise"


PICK_KEYS = (
    "strategy",
    "score",
    "score_n",
    "off_target",
    "flops",
    "regime_miss",
    "runtime",
    "cost",
)


def _by_score(item):
    return item[1]["score"]


def verdict(rows: list[dict], spread: dict) -> list[dict]:
    """Per space and regime above the base: the winning method, its margin and its z-score."""
    out = []
    sigma = spread["std"]
    keys = sorted({(r["space"], r["level"]) for r in rows if r["level"] != "base"})
    for space, level in keys:
        here = [r for r in rows if (r["space"], r["level"]) == (space, level)]
        best = {}  # each method's pick by first-round error, judged by its score (finals)
        for r in here:
            if r["method"] not in best or r["error"] < best[r["method"]]["error"]:
                best[r["method"]] = r
        ranked = sorted(best.values(), key=lambda r: r["score"])
        win = ranked[0]
        entry = {
            "space": space,
            "level": level,
            "regime": win["regime"],
            "winner": win["method"],
            "winner_strategy": win["strategy"],
            "winner_error": win["score"],
            "winner_n": win["score_n"],
            "methods": {m: r["score"] for m, r in best.items()},
            "methods_n": {m: r["score_n"] for m, r in best.items()},
            "runner_up": None,
            "margin": None,
            "z": None,
            "judgement": "only one method",
        }
        if len(ranked) > 1:
            run = ranked[1]
            margin = run["score"] - win["score"]
            z, judgement = judge(margin, sigma, win["score_n"], run["score_n"])
            entry.update(runner_up=run["method"], margin=margin, z=z, judgement=judgement)
        entry["picks"] = {
            m: {k: r[k] for k in PICK_KEYS} for m, r in sorted(best.items(), key=_by_score)
        }
        scaled = {r["strategy"]: r for r in here if r["method"] == "scaling"}
        entry["strategies"] = {
            s: {k: r[k] for k in ("error", "score", "epoch_time", "runtime", "off_target")}
            for s, r in scaled.items()
        }
        out.append(entry)
    return out


def pearson(x, y) -> float | None:
    """Pearson r of a comparison's columns (planner.profiles.pearson, at least 3 models)."""

    return profiles.pearson(x, y, min_points=3)


def format_r(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def correlations(df: pd.DataFrame) -> dict:
    """Pearson r of runtime with acts, flops, params (all models; scaled ones alone)."""
    out = {}
    df = df[df["phase"] == "first"]  # one row per network (finalist reruns would repeat it)
    for name, sub in (("all", df), ("scaled", df[df["method"].isin(["scaling", "hybrid"])])):
        out[name] = {c: pearson(sub[c], sub["runtime"]) for c in ("acts", "flops", "params")}
        out[name]["n"] = int(np.isfinite(sub["runtime"]).sum())
    return out
