"""The comparison report: Tables 7/8-style summary, figures and a verdict computed from results.

Input is the study's results table (`trials.study.load_results`): one row per trained
candidate with key, status, error, flops, params, acts, epoch_time, the spec fields and the
tags that `trials.compare` sets (method, space, regime, level, strategy, phase, model).
`analyze` is pure pandas/numpy; `build_report` adds the figures and writes `report.html`
(images embedded as data URIs, so the HTML alone is self-contained; the PNGs stay beside it).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from spaces.io import dumps_json

METHODS = ("base", "search", "scaling", "hybrid")
LEVELS = ("base", "intermediate", "top")
# Seed-noise thresholds: a margin of >= 2 standard errors is "clear", >= 1 "marginal".
CLEAR_Z, MARGINAL_Z = 2.0, 1.0
PAPER_FINDINGS = (
    "Paper (§9): at 4GF the searched model beats the scaled one (RegNetY by 0.6%, RegNetZ by "
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
    from spaces.units import UnitError, parse_quantity

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


def _judge(margin: float, sigma: float | None, n1: int, n2: int) -> tuple[float | None, str]:
    if sigma is None or not sigma > 0:
        return None, "spread unknown"
    z = margin / (sigma * math.sqrt(1 / n1 + 1 / n2))
    if z >= CLEAR_Z:
        return z, "clear"
    return z, "marginal" if z >= MARGINAL_Z else "within seed noise"


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
            z, judgement = _judge(margin, sigma, win["score_n"], run["score_n"])
            entry.update(runner_up=run["method"], margin=margin, z=z, judgement=judgement)
        scaled = {r["strategy"]: r for r in here if r["method"] == "scaling"}
        entry["strategies"] = {
            s: {"error": r["score"], "epoch_time": r["epoch_time"]} for s, r in scaled.items()
        }
        out.append(entry)
    return out


def pearson(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def correlations(df: pd.DataFrame) -> dict:
    """Pearson r of epoch time with acts, flops, params (all models; scaled ones alone)."""
    out = {}
    df = df[df["phase"] == "first"]  # one row per network (finalist reruns would repeat it)
    for name, sub in (("all", df), ("scaled", df[df["method"].isin(["scaling", "hybrid"])])):
        out[name] = {c: pearson(sub[c], sub["epoch_time"]) for c in ("acts", "flops", "params")}
        out[name]["n"] = int(np.isfinite(sub["epoch_time"]).sum())
    return out


def _versus(v: dict, a: str, b: str, sigma: float | None) -> str:
    """'a beats b by ...' with its judgement and whether that agrees with the paper (a wins)."""
    m = v["methods"]
    d = m[b] - m[a]
    z, judgement = _judge(abs(d), sigma, v["methods_n"][a], v["methods_n"][b])
    noise = f"{sigma * 100:.2f}%" if sigma else "unknown"
    zs = f", z = {z:.1f}" if z is not None else ""
    if judgement == "within seed noise":
        agree = "inconclusive: within seed noise"
    else:
        agree = "agrees" if d > 0 else "disagrees"
    return f"{d * 100:+.2f}% points ({judgement}{zs}; seed spread {noise}); {agree}"


def paper_agreement(verdicts: list[dict], spread: dict) -> list[str]:
    """Check the three §9 findings against the data; one sentence each, numbers included."""
    sigma = spread["std"]
    lines = []
    for v in verdicts:
        m, where = v["methods"], f"{v['space'] or 'all'} {v['regime']} ({v['level']})"
        if v["level"] == "intermediate" and "search" in m and "scaling" in m:
            lines.append(
                f"{where}: search beats scaling by {_versus(v, 'search', 'scaling', sigma)} "
                "(paper: search ahead by 0.1-0.6)."
            )
        if v["level"] == "top" and "hybrid" in m and "scaling" in m:
            lines.append(
                f"{where}: hybrid beats scaling from the base by "
                f"{_versus(v, 'hybrid', 'scaling', sigma)} (paper: hybrid ahead by 0.3)."
            )
        st = v["strategies"]
        if {"w", "dwr", "dWr"} <= set(st):
            de = (st["dWr"]["error"] - st["dwr"]["error"]) * 100
            tw, tdwr, tfast = (st[s]["epoch_time"] for s in ("w", "dwr", "dWr"))
            if sigma is None:
                acc = "noise unknown"
            elif abs(de) <= 2 * sigma * 100:
                acc = "within 2σ: agrees (paper: about as accurate)"
            else:
                better = "more" if de < 0 else "less"
                acc = f"outside 2σ, dWr {better} accurate: disagrees (paper: about as accurate)"
            faster = abs(tfast - tw) < abs(tdwr - tw)
            lines.append(
                f"{where}: dWr − dwr error {de:+.2f}% points ({acc}); epoch time w {tw:.3g}s, "
                f"dWr {tfast:.3g}s, dwr {tdwr:.3g}s "
                f"({'dWr nearer w: agrees' if faster else 'dWr not nearer w: disagrees'})."
            )
    return lines


def analyze(results: pd.DataFrame, meta: dict | None = None) -> dict:
    """Everything the report shows, as plain data (also written to summary.json)."""
    df = normalize(results, meta)
    if df.empty:
        raise ValueError("no completed trials to report on")
    rows = contenders(df)
    spread = seed_spread(df)
    verdicts = verdict(rows, spread)
    tolerance = float((meta or {}).get("config", {}).get("tolerance", 0.02))
    return {
        "off_target": off_target(rows, tolerance),
        "rows": rows,
        "spread": spread,
        "verdict": verdicts,
        "correlations": correlations(df),
        "paper": paper_agreement(verdicts, spread),
        "n_done": int(len(df)),
        "n_failed": int((results["status"] == "failed").sum()) if "status" in results else 0,
    }


def verdict_sentences(analysis: dict) -> list[str]:
    out = []
    for v in analysis["verdict"]:
        where = f"{v['space'] + ' ' if v['space'] else ''}{v['regime']} ({v['level']})"
        win = v["winner"] + (f" ({v['winner_strategy']})" if v["winner_strategy"] else "")
        s = f"{where}: {win} wins with error {v['winner_error'] * 100:.2f}%"
        if v["runner_up"]:
            s += f", {v['margin'] * 100:.2f}% points ahead of {v['runner_up']}"
            s += f" ({v['judgement']}" + (f", z = {v['z']:.1f})" if v["z"] is not None else ")")
        if v["winner"] == "search" and v["winner_n"] == 1:
            s += ". The searched error is a best-of-N single-seed value, biased low"
        out.append(s + ".")
    return out


def build_report(results: pd.DataFrame, out_dir: str | Path, meta: dict | None = None) -> Path:
    """Write report.html, the PNG figures and summary.json into out_dir; return the HTML path."""
    from spaces.safe_write import prepare_dir, write_file
    from trials.report_figures import STYLE, draw_figures, embed_png, table_html

    meta = dict(meta or {})
    out_dir = prepare_dir(out_dir)
    analysis = analyze(results, meta)
    df = normalize(results, meta)
    figures = draw_figures(df, analysis, out_dir)
    spread = analysis["spread"]
    corr = analysis["correlations"]
    sentences = verdict_sentences(analysis)
    write_file(
        out_dir / "summary.json",
        dumps_json({**analysis, "sentences": sentences, "meta": meta}, indent=2, default=str),
    )
    esc = html.escape
    meta_items = "".join(
        f"<li><b>{esc(str(k))}</b>: <code>{esc(json.dumps(v, default=str))}</code></li>"
        for k, v in meta.items()
        if k != "keys"
    )
    r_line = ", ".join(
        f"{name} (n={c['n']}): r(acts) = {c['acts']:.2f}, r(flops) = {c['flops']:.2f}, "
        f"r(params) = {c['params']:.2f}"
        for name, c in corr.items()
    )
    sigma = spread["std"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>fastscale compare"
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>Scaling vs search vs hybrid — {esc(str(meta.get('preset', '')))}</h1>",
        "<h2>Verdict</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>",
        f"<p>Seed-to-seed spread σ = {esc(f'{sigma * 100:.2f}% points' if sigma else 'unknown')}"
        f": {esc(spread['source'])}. A margin counts as clear at ≥ {CLEAR_Z:g} standard errors "
        f"of the difference, marginal at ≥ {MARGINAL_Z:g}.</p>",
        "".join(f"<p><b>Off target:</b> {esc(t)}</p>" for t in analysis["off_target"]),
        "<h3>Against the paper</h3><p>"
        + esc(PAPER_FINDINGS)
        + "</p><ul>"
        + "".join(f"<li>{esc(s)}</li>" for s in analysis["paper"])
        + "</ul>",
        "<h2>Models per regime and strategy (cf. the paper's Tables 7 and 8)</h2>",
        table_html(analysis["rows"]),
        f"<p>{analysis['n_done']} completed trials, {analysis['n_failed']} failed. Errors are "
        "validation top-1 fractions in %; the final column is the longer-schedule / repeated-"
        "seed retraining where the preset asks for it.</p>",
        "<h2>Figures</h2>",
        f"<p>Runtime versus complexity on this hardware: {esc(r_line)} "
        "(paper, 8 V100: r = 0.99 acts, 0.81 flops, 0.56 params).</p>",
        *(embed_png(p, cap) for p, cap in figures),
        "<h2>Run</h2><ul>" + meta_items + "</ul></body></html>",
    ]
    path = out_dir / "report.html"
    write_file(path, "\n".join(parts))
    return path
