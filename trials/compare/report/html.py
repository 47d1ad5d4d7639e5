"""The comparison report as one self-contained HTML page (figures embedded as data URIs).

Order: the answer per regime first, then the verdict and the paper's findings, the table,
the figures, and a small table describing the run.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from spaces.io import dumps_json
from spaces.safe_write import prepare_dir, write_file
from spaces.units import format_quantity
from trials.compare.report.analysis import CLEAR_Z, MARGINAL_Z, PAPER_FINDINGS, format_r, normalize
from trials.compare.report.figures import draw_figures, predicted_vs_measured
from trials.compare.report.summary import analyze

esc = html.escape

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222;line-height:1.4}"
    "table{border-collapse:collapse;font-size:90%;margin:.5em 0}td,th{border:1px solid #ccc;"
    "padding:3px 6px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}"
    "img{max-width:100%}figure{margin:1.5em 0}figcaption{color:#555}"
    "code{background:#f3f3f3;padding:1px 3px}"
    ".answer{background:#eef6ee;border-left:4px solid #3a7;padding:.6em 1em;font-size:105%}"
    ".off{color:#a40}"
)


def _fmt(v, kind: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if kind == "q":
        return format_quantity(v)
    if kind == "pct":
        return f"{v * 100:.2f}"
    return f"{v:.3g}"


def table_html(rows: list[dict]) -> str:
    """The Tables 7/8-style summary: one row per (space, regime, method, strategy)."""
    head = (
        "<tr><th class=l>space</th><th class=l>regime</th><th class=l>method</th>"
        "<th class=l>strategy</th><th>flops (vs regime)</th><th>params</th><th>acts</th>"
        "<th>epoch time (s)</th><th>error %</th><th>population mean ± std (N)</th>"
        "<th>final error % mean ± std (seeds)</th></tr>"
    )
    body = []
    for r in rows:
        pop = (
            f"{_fmt(r['pop_mean'], 'pct')} ± {_fmt(r['pop_std'], 'pct')} ({r['pop_n']})"
            if r["method"] == "search"
            else ""
        )
        fin = (
            f"{_fmt(r['final_mean'], 'pct')} ± {_fmt(r['final_std'], 'pct')} ({r['final_n']})"
            if r["final_n"]
            else ""
        )
        miss = f" ({r['regime_miss'] * 100:+.1f}%)" if math.isfinite(r["regime_miss"]) else ""
        flops = esc(_fmt(r["flops"], "q") + miss)
        if r.get("off_target"):
            flops = f"<span class=off title='outside the regime window'>{flops} off target</span>"
        cells = [
            (r["space"], "l"),
            (f"{r['regime']} ({r['level']})", "l"),
            ("search (best of N)" if r["method"] == "search" else r["method"], "l"),
            (r["strategy"], "l"),
            (flops, "html"),
            (_fmt(r["params"], "q"), ""),
            (_fmt(r["acts"], "q"), ""),
            (_fmt(r["runtime"], "g"), ""),
            (_fmt(r["error"], "pct"), ""),
            (pop, ""),
            (fin, ""),
        ]
        tds = "".join(
            f"<td>{c}</td>" if kind == "html" else f"<td class={kind or 'r'}>{esc(str(c))}</td>"
            for c, kind in cells
        )
        body.append(f"<tr>{tds}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def embed_png(path: Path, caption: str) -> str:
    """A figure as an <img> with a base64 data URI: the HTML needs no file beside it."""
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)} ({path.name})</figcaption></figure>"
    )


def _relative(path: str, out_dir: Path) -> str:
    """A path as the reader can use it: relative to the working directory when inside it,
    a preset's bare name when it is one of ours."""
    if not path:
        return ""
    p = Path(path)
    if "trials/compare/presets" in p.as_posix():
        return p.stem + " (shipped preset)"
    if not p.is_absolute():
        return path
    try:  # inside the working directory: relative; elsewhere: its name (no host paths)
        return p.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return p.name


def run_table(meta: dict, out_dir: Path) -> str:
    """Preset, data, regimes, schedule and every invocation's wall time, as a small table."""
    cfg = meta.get("config") or {}
    train = cfg.get("train") or {}
    regimes = " → ".join(str(v) for v in (meta.get("regimes") or {}).values())
    schedule = ", ".join(
        f"{k} {train[k]}"
        for k in ("epochs", "train_size", "val_size", "batch_size", "resolution")
        if train.get(k) is not None
    )
    fin = cfg.get("finalists") or {}
    runs = meta.get("runs") or []
    items = [
        ("directory", _relative(str(out_dir), out_dir)),
        (
            "preset",
            f"{meta.get('preset', '')} — {_relative(meta.get('preset_source', ''), out_dir)}",
        ),
        ("dataset", meta.get("dataset", "")),
        ("spaces", ", ".join(cfg.get("spaces") or [])),
        ("regimes", regimes),
        ("samples per regime", meta.get("samples", "")),
        ("strategies", ", ".join(cfg.get("strategies") or [])),
        ("first-round schedule", schedule),
        (
            "finalists",
            f"{fin.get('epochs')} epoch(s), seeds {fin.get('seeds')}, {fin.get('select')}"
            if fin
            else "none",
        ),
        ("trials", len(meta.get("keys") or [])),
    ]
    for i, r in enumerate(runs, 1):
        items.append(
            (
                f"invocation {i}",
                f"{r.get('wall_s')} s wall, finished {r.get('finished')}, {r.get('cpus')} CPUs",
            )
        )
    rows = "".join(
        f"<tr><th class=l>{esc(str(k))}</th><td class=l>{esc(str(v))}</td></tr>" for k, v in items
    )
    return (
        f"<table>{rows}</table><p>Everything else: <code>compare.json</code> beside this page.</p>"
    )


def epoch_time_html(check: dict | None, out_dir: Path) -> str:
    """The section on a runtime profile's predictions of the study's own epoch times."""
    if not check or not check.get("rows"):
        return ""
    s = check["summary"]
    r = "-" if s.get("pearson_r") is None else f"{s['pearson_r']:.3f}"
    head = "".join(
        f"<th class={c}>{h}</th>"
        for h, c in (("model", "l"), ("method", "l"), ("strategy", "l"), ("regime", "l"),
                     ("px", "r"), ("measured s", "r"), ("predicted s", "r"), ("error", "r"))
    )  # fmt: skip
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class={c}>{esc(str(v))}</td>"
            for v, c in (
                (x["model"], "l"),
                (x["method"], "l"),
                (x["strategy"] or "-", "l"),
                (x["regime"], "l"),
                (x.get("resolution", ""), "r"),
                (f"{x['measured_s']:.3g}", "r"),
                (f"{x['predicted_s']:.3g}", "r"),
                (f"{x['error']:+.1%}", "r"),
            )
        )  # fmt: skip
        + "</tr>"
        for x in check["rows"]
    )
    figure = predicted_vs_measured(check, out_dir / "epoch_time_predicted.png")
    return (
        f"<h2>Epoch time: measured vs predicted by {esc(check['profile'])}</h2>"
        f"<p>{s['n']} models, {check['images']} images per epoch at batch {check['batch']}: "
        f"median error {s['median_abs_error']:.1%}, max {s['max_abs_error']:.1%}, "
        f"{s['within_10pct']:.0%} within ±10 %, Pearson r {esc(r)}. Measured: "
        f"{esc(check.get('measured', 'the study'))}; predicted: the profile's operation "
        "costs at that batch. A profile calibrated under other conditions (threads, clock, "
        "hardware) shows a common scale error; r says whether it still ranks the models.</p>"
        + f"<table><tr>{head}</tr>{body}</table>"
        + embed_png(figure, "Predicted vs measured epoch time; the band is ±10 %.")
    )


def build_report(
    results: pd.DataFrame,
    out_dir: str | Path,
    meta: dict | None = None,
    epoch_time_check: dict | None = None,
) -> Path:
    """Write report.html, the PNG figures and summary.json into out_dir; return the HTML path.
    `epoch_time_check` (trials.compare.runtime_check.epoch_time_check) adds the measured-vs-predicted
    epoch time section."""

    meta = dict(meta or {})
    out_dir = prepare_dir(out_dir)
    analysis = analyze(results, meta)
    figures = draw_figures(normalize(results, meta), analysis, out_dir, meta)
    summary = {**analysis, "meta": meta, "epoch_time_check": epoch_time_check}
    write_file(out_dir / "summary.json", dumps_json(summary, indent=2, default=str))
    spread = analysis["spread"]
    sigma = spread["std"]
    r_line = ", ".join(
        f"{name} (n={c['n']}): r(acts) = {format_r(c['acts'])}, "
        f"r(flops) = {format_r(c['flops'])}, r(params) = {format_r(c['params'])}"
        for name, c in analysis["correlations"].items()
    )
    bullets = lambda lines: "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in lines) + "</ul>"  # noqa: E731
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>fastscale compare"
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>Scaling vs search vs hybrid — {esc(str(meta.get('preset', '')))}</h1>",
        "<div class=answer><b>What to do at each regime</b>"
        + bullets(analysis["headline"])
        + "</div>",
        "<h2>Verdict</h2>" + bullets(analysis["sentences"]),
        f"<p>Seed-to-seed spread σ = {esc(f'{sigma * 100:.2f}% points' if sigma else 'unknown')}"
        f": {esc(spread['source'])}. A margin counts as clear at ≥ {CLEAR_Z:g} standard errors "
        f"of the difference, marginal at ≥ {MARGINAL_Z:g}, otherwise it is a tie.</p>",
        "".join(f"<p class=off><b>Off target:</b> {esc(t)}</p>" for t in analysis["off_target"]),
        "<h3>Against the paper</h3><p>" + esc(PAPER_FINDINGS) + "</p>" + bullets(analysis["paper"]),
        "<h2>Models per regime and strategy (cf. the paper's Tables 7 and 8)</h2>",
        table_html(analysis["rows"]),
        f"<p>{analysis['n_done']} completed trials, {analysis['n_failed']} failed"
        f"{_stopped(analysis)}. Errors are "
        "validation top-1 in %; the final column is the longer-schedule / repeated-seed "
        "retraining where the preset asks for it. Epoch times: "
        f"{esc(analysis['runtime_source'])}.</p>",
        "<h2>Figures</h2>",
        f"<p>Runtime versus complexity on this hardware: {esc(r_line)} "
        "(paper, 8 V100: r = 0.99 acts, 0.81 flops, 0.56 params).</p>",
        *(embed_png(p, cap) for p, cap in figures),
        epoch_time_html(epoch_time_check, out_dir),
        "<h2>Run</h2>" + run_table(meta, out_dir) + "</body></html>",
    ]
    path = out_dir / "report.html"
    write_file(path, "\n".join(parts))
    return path


def _stopped(analysis: dict) -> str:
    """', 3 stopped early (left out of the ranking)' when a scheduler stopped any."""
    n = analysis.get("n_stopped") or 0
    return f", {n} stopped early (left out of the ranking)" if n else ""
