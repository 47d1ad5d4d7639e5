"""Figures of the comparison report (matplotlib, Agg).

One encoding throughout: colour = method (base, search, scaling, hybrid), marker = scaling
strategy; the EDF, which shows only searched populations, colours by regime. Regimes are
marked on every flops axis; log axes label enough ticks to read values off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spaces.safe_write import open_for_write
from spaces.units import UnitError, parse_quantity
from trials.analysis.stats import edf
from trials.compare.report.analysis import format_r, pearson, pick_best

METHOD_COLORS = {
    "base": "black",
    "search": "tab:gray",
    "scaling": "tab:blue",
    "hybrid": "tab:orange",
}
STRATEGY_MARKERS = {"": "o", "w": "s", "dwr": "D", "dWr": "^", "d": "v", "r": "<", "dw": ">"}
FIGSIZE = (9.5, 5.5)  # with the legend beside the axes; 1140 px wide at DPI
DPI = 120


def _color(method: str) -> str:
    return METHOD_COLORS.get(method, "tab:purple")


def _marker(strategy: str) -> str:
    return STRATEGY_MARKERS.get(strategy, "P")


def _log_ticks(axis, seconds: bool = False) -> None:
    """Log axis with labels at 1-2-5 steps (a short range would otherwise get a single
    labelled tick): counts in engineering notation (20k, 5M), seconds as plain numbers."""
    from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    fmt = FuncFormatter(lambda v, _: f"{v:g}") if seconds else EngFormatter(sep="")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=10)
    fig.tight_layout()
    with open_for_write(path) as fh:
        fig.savefig(fh, dpi=DPI, format="png")
    plt.close(fig)
    return path


def _spaces(df: pd.DataFrame) -> list[str]:
    return sorted(set(df["space"])) or [""]


def _regime_flops(meta: dict) -> dict[str, float]:
    out = {}
    for label in (meta.get("regimes") or {}).values():
        try:
            out[str(label)] = float(parse_quantity(str(label)))
        except (UnitError, ValueError):
            continue
    return out


def _mark_regimes(ax, meta: dict) -> None:
    """A dashed vertical line and a label at each regime's nominal flops."""
    import matplotlib.transforms as mtransforms

    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    for label, flops in _regime_flops(meta).items():
        ax.axvline(flops, color="0.6", ls="--", lw=1, zorder=0)
        ax.text(flops, 0.99, f" {label}", transform=trans, va="top", fontsize=9, color="0.35")


def _legend(ax, outside: bool = True, **kw) -> None:
    """The legend beside the axes (never over points or regime labels), or where told."""
    handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside:
        kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}
    ax.legend(fontsize=9, **kw)


def _scatter_methods(ax, sub: pd.DataFrame, x: str, y: pd.Series) -> None:
    """Every (method, strategy) group: colour by method, marker by strategy."""
    order = {m: i for i, m in enumerate(METHOD_COLORS)}
    groups = sorted(
        sub.groupby(["method", "strategy"]), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])
    )
    for (method, strategy), g in groups:
        ax.scatter(
            g[x],
            y.loc[g.index],
            marker=_marker(strategy),
            color=_color(method),
            s=28 if method == "search" else 70,
            edgecolors="k" if method != "search" else "none",
            linewidths=0.6,
            label=f"{method} {strategy}".strip(),
            zorder=3 if method != "search" else 2,
        )


def error_vs_flops(df: pd.DataFrame, path: Path, meta: dict) -> Path:
    """(b) error vs flops: every first-round model, regimes marked, best searched starred."""
    import matplotlib.pyplot as plt

    spaces = _spaces(df)
    fig, axes = plt.subplots(
        1, len(spaces), figsize=(FIGSIZE[0] * len(spaces), FIGSIZE[1]), squeeze=False
    )
    used = set(df["source"]) if "source" in df else set()
    for ax, space in zip(axes[0], spaces, strict=True):
        sub = df[(df["space"] == space) & (df["phase"] == "first")]
        _scatter_methods(ax, sub, "flops", sub["error"] * 100)
        pop = sub[sub["method"] == "search"]
        for i, (_, g) in enumerate(pop.groupby("regime")):
            best = pick_best(g, used)
            ax.scatter(
                best["flops"],
                best["error"] * 100,
                marker="*",
                s=260,
                facecolors="none",
                edgecolors=_color("search"),
                linewidths=1.5,
                label="best searched" if i == 0 else None,
                zorder=4,
            )
        _mark_regimes(ax, meta)
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
        ax.set_xlabel("flops (multiply-adds)")
        ax.set_ylabel("validation error (%)")
        ax.set_title(f"Error vs flops {space}".strip())
        _legend(ax)
    return _save(fig, path)


def runtime_vs_complexity(df: pd.DataFrame, path: Path, meta: dict) -> Path:
    """(c) the paper's Figure 2 on this hardware: epoch time vs acts and vs flops, with r."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(FIGSIZE[0], 2 * FIGSIZE[1]))  # full width each
    ok = df[np.isfinite(df["runtime"]) & (df["phase"] == "first")]
    for ax, col in zip(axes, ("acts", "flops"), strict=True):
        _scatter_methods(ax, ok, col, ok["runtime"])
        if col == "flops":
            _mark_regimes(ax, meta)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax.xaxis)
        _log_ticks(ax.yaxis, seconds=True)
        ax.set_xlabel(col)
        ax.set_ylabel("epoch time (s)")
        r = format_r(pearson(ok[col], ok["runtime"]))
        ax.set_title(f"Epoch time vs {col}: Pearson r = {r}")
        _legend(ax)
    return _save(fig, path)


def error_edf(df: pd.DataFrame, path: Path, meta: dict) -> Path:
    """(d) empirical distribution of the searched populations' errors, per space and regime
    (legend in regime order, smallest first)."""
    import matplotlib.pyplot as plt

    flops = _regime_flops(meta)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    pop = df[(df["method"] == "search") & (df["phase"] == "first")]
    groups = sorted(
        pop.groupby(["space", "regime"]),
        key=lambda kv: (kv[0][0], flops.get(kv[0][1], kv[1]["flops"].median())),
    )
    for (space, regime), g in groups:
        x, share = edf(g["error"].to_numpy(float))  # the one EDF (trials.analysis.stats)
        ax.step(
            np.r_[x[0], x] * 100,
            np.r_[0.0, share],
            where="post",
            lw=2,
            label=f"{space} {regime} (n={len(g)})".strip(),
        )
    ax.set_xlabel("validation error (%)")
    ax.set_ylabel("fraction of models with error ≤ x")
    ax.set_ylim(0, 1.02)
    ax.set_title("Error EDF of the searched populations (colour = regime)")
    _legend(ax, outside=False, loc="lower right")
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


def error_vs_runtime(df: pd.DataFrame, path: Path, meta: dict) -> Path:
    """(e) error vs epoch time for every first-round model, with the Pareto front."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = df[np.isfinite(df["runtime"]) & (df["phase"] == "first")].reset_index(drop=True)
    _scatter_methods(ax, ok, "runtime", ok["error"] * 100)
    if len(ok):
        idx = pareto_front(ok["runtime"], ok["error"])
        ax.step(
            ok["runtime"].iloc[idx],
            ok["error"].iloc[idx] * 100,
            "k--",
            lw=1,
            where="post",
            label="Pareto front",
        )
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, seconds=True)
    ax.set_xlabel("epoch time (s)")
    ax.set_ylabel("validation error (%)")
    ax.set_title("Error vs epoch time")
    _legend(ax)
    return _save(fig, path)


def draw_figures(
    df: pd.DataFrame, analysis: dict, out_dir: Path, meta: dict | None = None
) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    meta = meta or {}
    out_dir = Path(out_dir)
    key = "Colour = method, marker = scaling strategy"
    regimes = "; dashed grey lines = the regimes."
    return [
        (
            error_vs_flops(df, out_dir / "error_vs_flops.png", meta),
            f"Error vs flops of every first-round model. {key}{regimes}",
        ),
        (
            runtime_vs_complexity(df, out_dir / "runtime_vs_complexity.png", meta),
            "Epoch time vs activations and vs flops (the paper's Figure 2, this hardware). " + key,
        ),
        (
            error_edf(df, out_dir / "error_edf.png", meta),
            "Error EDFs of the searched populations, one line per regime",
        ),
        (
            error_vs_runtime(df, out_dir / "error_vs_runtime.png", meta),
            f"Error vs epoch time with the Pareto front (dashed black). {key}.",
        ),
    ]


def predicted_vs_measured(check: dict, path: Path) -> Path:
    """Epoch time predicted by a runtime profile against the time measured in the study
    (trials.compare.runtime_check): the diagonal and a ±10 % band; colour = method as elsewhere."""
    import matplotlib.pyplot as plt

    rows = check["rows"]
    fig, ax = plt.subplots(figsize=(7.0, 5.5))
    meas = np.array([r["measured_s"] for r in rows], dtype=float)
    pred = np.array([r["predicted_s"] for r in rows], dtype=float)
    lo, hi = min(meas.min(), pred.min()) / 1.2, max(meas.max(), pred.max()) * 1.2
    line = np.geomspace(lo, hi, 50)
    ax.plot(line, line, color="black", lw=1, label="predicted = measured")
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.12, label="±10 %")
    for method in dict.fromkeys(r["method"] for r in rows):
        idx = [i for i, r in enumerate(rows) if r["method"] == method]
        ax.scatter(meas[idx], pred[idx], color=_color(method), label=method, s=36, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    _log_ticks(ax.xaxis, seconds=True)
    _log_ticks(ax.yaxis, seconds=True)
    ax.set_xlabel("measured epoch time (s)")
    ax.set_ylabel(f"predicted by {check['profile']} (s)")
    ax.legend(loc="upper left", fontsize=9)
    return _save(fig, path)
