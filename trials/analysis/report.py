"""DIR/analysis.html: the populations table, the refined space and the figures (EDFs with
bootstrap bands, the expected best of m, error-vs-parameter trends), self-contained with the
PNGs embedded as data URIs, like the compare report. matplotlib (Agg), imported lazily."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from spaces.safe_write import write_file
from trials.analysis.refine import RANGE_KEYS, good_mask
from trials.analysis.sources import parameters

FIGSIZE = (9.5, 5.5)
DPI = 110
MAX_POINTS = 4000  # per population in a trend scatter (a seeded subsample beyond)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def edf_figure(result: dict) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, pop in enumerate(result["populations"]):
        e = pop["edf"]
        x = np.asarray(e["x"]) * 100
        color = f"C{i % 10}"
        ax.step(x, e["F"], where="post", lw=2, color=color, label=f"{pop['label']} (n={pop['n']})")
        ax.fill_between(x, e["lo"], e["hi"], step="post", color=color, alpha=0.2, lw=0)
    level = result["config"]["level"]
    reweighted = any(p.get("reweighted") for p in result["populations"])
    norm = "complexity-normalised " if reweighted else ""
    ax.set_xlabel("error (%)")
    ax.set_ylabel("cumulative share of models")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{norm}error EDFs with {level:.0%} bootstrap bands")
    ax.legend(fontsize=9, loc="lower right")
    return _png(fig)


def best_of_m_figure(result: dict) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, pop in enumerate(result["populations"]):
        b = pop["best_of_m"]
        color = f"C{i % 10}"
        ax.plot(b["m"], np.asarray(b["value"]) * 100, color=color, lw=2, label=pop["label"])
        lo, hi = np.asarray(b["lo"]) * 100, np.asarray(b["hi"]) * 100
        ax.fill_between(b["m"], lo, hi, color=color, alpha=0.2, lw=0)
    _log_axis(ax)
    ax.set_xlabel("models trained by a random search (m)")
    ax.set_ylabel("expected best error (%)")
    ax.set_title("What a search budget of m models buys")
    ax.legend(fontsize=9)
    return _png(fig)


def trends_figure(pops: list, result: dict, q: float, seed: int) -> str | None:
    import matplotlib.pyplot as plt

    names = []
    for _, rows in pops:
        names += [n for n in parameters(rows) if n not in names]
    if not names:
        return None
    cols = min(3, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    rng = np.random.default_rng(seed)
    refined = (result.get("refined") or {}).get("space") or {}
    for ax, name in zip(axes.ravel(), names, strict=False):
        for i, (label, rows) in enumerate(pops):
            if name not in rows:
                continue
            v, e = rows[name].to_numpy(float), rows["error"].to_numpy(float) * 100
            good = good_mask(e, q)
            show = np.arange(len(v))
            if len(show) > MAX_POINTS:
                show = np.sort(rng.choice(len(v), MAX_POINTS, replace=False))
            color = f"C{i % 10}"
            ax.scatter(v[show], e[show], s=8, color=color, alpha=0.25, lw=0)
            ax.scatter(v[good], e[good], s=14, color=color, lw=0, label=f"{label} top {q:.0%}")
        if name in refined and name in RANGE_KEYS:
            ax.axvspan(refined[name]["low"], refined[name]["high"], color="0.5", alpha=0.15)
        if name in ("w0", "wa", "group_width"):
            _log_axis(ax)
        ax.set_xlabel(name)
        ax.set_ylabel("error (%)")
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"error vs design parameter (top {q:.0%} darker; grey: refined range)")
    return _png(fig)


def _log_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.2f}"


def rows(result: dict) -> list[dict]:
    """One row per population: the table the CLI prints and the HTML shows."""
    out = []
    for pop in result["populations"]:
        top, ks = pop["top_q"], pop["ks_vs_first"]
        share = pop["share_within"]
        out.append(
            {
                "population": pop["label"],
                "n": pop["n"],
                "best %": _pct(pop["best"]),
                "median %": _pct(pop["median"]),
                f"top-{top['q']:.0%} error %": f"{_pct(top['value'])} [{_pct(top['lo'])}, {_pct(top['hi'])}]",
                f"within {share['percent']:g}%": f"{share['share']:.0%}",
                "KS vs first": "-" if ks is None else f"D={ks['d']:.2f} p={ks['p']:.3g}",
            }
        )
    return out


def _table(records: list[dict]) -> str:
    if not records:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in records[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
        for r in records
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def refined_text(refined: dict) -> str:
    return (
        f"refined space of {refined['from']}: keeps {refined['good_kept']:.0%} of the "
        f"{refined['good']} good models and {refined['others_kept']:.0%} of the "
        f"{refined['others']} others"
    )


def write_html(pops: list, result: dict, out: Path, cfg) -> Path:
    """DIR/analysis.html (see the module docstring); `pops` as trials.analysis.run forms them."""
    import yaml

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>fastscale analyze</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}</style>",
        "</head><body><h1>Design-space analysis</h1>",
        "<p>Populations by design space and flop regime; statistics as in Radosavovic et al. "
        "2019 and 2020 §3 (docs/analysis.md).</p>",
        _table(rows(result)),
    ]
    refined = result.get("refined")
    if refined:
        text = yaml.safe_dump(refined["space"], sort_keys=False)
        parts += [f"<h2>Refined space</h2><p>{html.escape(refined_text(refined))}</p>"]
        parts += [f"<pre>{html.escape(text)}</pre>"]
    figures = [
        ("Error EDFs", edf_figure(result)),
        ("Expected best error of a random search of m models", best_of_m_figure(result)),
        ("Trends", trends_figure(pops, result, cfg.q, cfg.seed)),
    ]
    for title, data in figures:
        if data:
            parts.append(f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    path = out / "analysis.html"
    write_file(path, "\n".join(parts))
    return path
