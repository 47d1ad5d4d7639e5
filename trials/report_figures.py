"""Figures and HTML pieces of the comparison report (matplotlib, Agg)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from spaces.safe_write import open_for_write
from trials.report import pearson, pick_best

COLORS = {"w": "tab:blue", "dwr": "tab:green", "dWr": "tab:red", "": "tab:gray"}
MARKERS = {"base": "s", "search": "o", "scaling": "D", "hybrid": "^"}


def _color(strategy: str) -> str:
    if strategy in COLORS:
        return COLORS[strategy]
    palette = ["tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    return palette[hash(strategy) % len(palette)]


def _save(fig, path: Path) -> Path:
    from matplotlib.ticker import NullFormatter

    for ax in fig.axes:  # log axes over a short range: minor labels would overlap
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    with open_for_write(path) as fh:
        fig.savefig(fh, dpi=90, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _spaces(df: pd.DataFrame) -> list[str]:
    return sorted(set(df["space"])) or [""]


def error_vs_flops(df: pd.DataFrame, path: Path) -> Path:
    """(b) error vs flops: the searched population in grey, scaled models by strategy."""
    import matplotlib.pyplot as plt

    spaces = _spaces(df)
    fig, axes = plt.subplots(1, len(spaces), figsize=(6 * len(spaces), 4.5), squeeze=False)
    for ax, space in zip(axes[0], spaces, strict=True):
        sub = df[(df["space"] == space) & (df["phase"] == "first")]
        pop = sub[sub["method"] == "search"]
        ax.scatter(pop["flops"], pop["error"] * 100, c="lightgray", s=18, label="search samples")
        for (method, strategy), g in sub[sub["method"] != "search"].groupby(["method", "strategy"]):
            ax.scatter(
                g["flops"],
                g["error"] * 100,
                marker=MARKERS.get(method, "x"),
                color=_color(strategy),
                s=50,
                label=f"{method} {strategy}".strip(),
                edgecolors="k",
            )
        for _, g in pop.groupby("regime"):
            best = pick_best(g, set(df["source"]) if "source" in df else set())
            ax.scatter(
                best["flops"],
                best["error"] * 100,
                marker="*",
                s=160,
                color="gold",
                edgecolors="k",
                label=None,
            )
        ax.set_xscale("log")
        ax.set_xlabel("flops (multiply-adds)")
        ax.set_ylabel("error (%)")
        ax.set_title(f"error vs flops {space}".strip() + " (★ best searched)")
        ax.legend(fontsize=7)
    return _save(fig, path)


def runtime_vs_complexity(df: pd.DataFrame, path: Path) -> Path:
    """(c) the paper's Figure 2 on this hardware: epoch time vs acts and vs flops, with r."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ok = df[np.isfinite(df["epoch_time"]) & (df["phase"] == "first")]
    for ax, col in zip(axes, ("acts", "flops"), strict=True):
        for method, g in ok.groupby("method"):
            ax.scatter(
                g[col],
                g["epoch_time"],
                marker=MARKERS.get(method, "x"),
                s=25,
                label=method,
                alpha=0.8,
            )
        ax.set_xscale("log")
        ax.set_xlabel(col)
        ax.set_ylabel("epoch time (s)")
        ax.set_title(f"epoch time vs {col}: Pearson r = {pearson(ok[col], ok['epoch_time']):.2f}")
        ax.legend(fontsize=7)
    return _save(fig, path)


def error_edf(df: pd.DataFrame, path: Path) -> Path:
    """(d) empirical distribution of the searched populations' errors, per space and regime."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    pop = df[(df["method"] == "search") & (df["phase"] == "first")]
    for (space, regime), g in pop.groupby(["space", "regime"]):
        e = np.sort(g["error"].to_numpy(float)) * 100
        ax.step(
            e,
            np.arange(1, len(e) + 1) / len(e),
            where="post",
            label=f"{space} {regime} (n={len(e)})".strip(),
        )
    ax.set_xlabel("error (%)")
    ax.set_ylabel("fraction of models with error ≤ x")
    ax.set_title("error EDF of the searched populations")
    if len(pop):
        ax.legend(fontsize=8)
    return _save(fig, path)


def pareto_front(times, errors) -> np.ndarray:
    """Indices of the points no other point beats on both runtime and error (sorted by time)."""
    times, errors = np.asarray(times, float), np.asarray(errors, float)
    order = np.lexsort((errors, times))
    front, best = [], np.inf
    for i in order:
        if errors[i] < best:
            front.append(i)
            best = errors[i]
    return np.asarray(front, dtype=int)


def error_vs_runtime(df: pd.DataFrame, path: Path) -> Path:
    """(e) error vs epoch time for every trained model, with the Pareto front."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ok = df[np.isfinite(df["epoch_time"]) & (df["phase"] == "first")].reset_index(drop=True)
    for (method, strategy), g in ok.groupby(["method", "strategy"]):
        ax.scatter(
            g["epoch_time"],
            g["error"] * 100,
            marker=MARKERS.get(method, "x"),
            color=_color(strategy) if method != "search" else "lightgray",
            edgecolors="k",
            s=35,
            label=f"{method} {strategy}".strip(),
        )
    if len(ok):
        idx = pareto_front(ok["epoch_time"], ok["error"])
        ax.step(
            ok["epoch_time"].iloc[idx],
            ok["error"].iloc[idx] * 100,
            "k--",
            lw=1,
            where="post",
            label="Pareto front",
        )
    ax.set_xscale("log")
    ax.set_xlabel("epoch time (s)")
    ax.set_ylabel("error (%)")
    ax.set_title("error vs runtime")
    ax.legend(fontsize=7)
    return _save(fig, path)


def draw_figures(df: pd.DataFrame, analysis: dict, out_dir: Path) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    return [
        (error_vs_flops(df, out_dir / "error_vs_flops.png"), "Error vs flops by strategy"),
        (
            runtime_vs_complexity(df, out_dir / "runtime_vs_complexity.png"),
            "Epoch time vs activations and vs flops (the paper's Figure 2, this hardware)",
        ),
        (error_edf(df, out_dir / "error_edf.png"), "Error EDFs of the searched populations"),
        (
            error_vs_runtime(df, out_dir / "error_vs_runtime.png"),
            "Error vs epoch time with the Pareto front",
        ),
    ]


def _fmt(v, kind: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if kind == "q":
        from spaces.units import format_quantity

        return format_quantity(v)
    if kind == "pct":
        return f"{v * 100:.2f}"
    return f"{v:.3g}"


def table_html(rows: list[dict]) -> str:
    head = (
        "<tr><th>space</th><th>regime</th><th>method</th><th>strategy</th><th>flops (vs regime)</th>"
        "<th>params</th><th>acts</th><th>epoch time (s)</th><th>error %</th>"
        "<th>population mean ± std (N)</th><th>final error % mean ± std (seeds)</th></tr>"
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
        label = "search (best of N)" if r["method"] == "search" else r["method"]
        cells = [
            r["space"],
            f"{r['regime']} ({r['level']})",
            label,
            r["strategy"],
            _fmt(r["flops"], "q")
            + (f" ({r['regime_miss'] * 100:+.1f}%)" if math.isfinite(r["regime_miss"]) else ""),
            _fmt(r["params"], "q"),
            _fmt(r["acts"], "q"),
            _fmt(r["epoch_time"], "g"),
            _fmt(r["error"], "pct"),
            pop,
            fin,
        ]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def embed_png(path: Path, caption: str) -> str:
    """A figure as an <img> with a base64 data URI: the HTML needs no file beside it."""
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)} ({path.name})</figcaption></figure>"
    )


STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}"
    "code{background:#f3f3f3;padding:1px 3px}"
)
