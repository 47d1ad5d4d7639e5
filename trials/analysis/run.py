"""`fastscale analyze`: populations of trained models, their statistics (trials.analysis.stats)
and a refined space (trials.analysis.refine), written as DIR/analysis.html, DIR/analysis.json
and DIR/refined_space.yaml. See docs/analysis.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spaces.io import dumps_json
from spaces.safe_write import prepare_dir, write_file
from trials.analysis import refine, stats
from trials.analysis.report import write_html
from trials.analysis.sources import AnalysisError, parameters, read_source

CHECKED = ("dataset", "resolution")  # one value per population unless --by separates them


@dataclass(frozen=True)
class AnalyzeConfig:
    """How populations are formed and measured (the CLI's options)."""

    by: tuple[str, ...] = ()  # group by these columns instead of the design space
    bootstrap: int = 1000  # resamples behind every band
    permutations: int = 1000  # relabellings behind each KS p-value
    level: float = 0.95  # band coverage
    q: float = 0.25  # the good models: the top q of a population
    within: float = 5.0  # share of models within this % (relative) of the best
    keep: float = 0.8  # the refined space keeps at least this share of the good models
    normalize: bool = True  # complexity-normalised EDFs (Radosavovic 2019 §3)
    seed: int = 0


def load(refs: list[str]):
    import pandas as pd

    frames = [read_source(r) for r in refs]
    return pd.concat(frames, ignore_index=True, sort=False)


def populations(df, by: tuple[str, ...]) -> list[tuple[str, object]]:
    """(label, rows) per population: by design space (or `by`) and flop regime, in order of
    first appearance; each must have 2+ models, one dataset and one resolution."""
    keys = [*(by or ("space",)), "regime"]
    missing = [k for k in keys if k not in df]
    if missing:
        shown = ", ".join(c for c in df.columns if not str(c).startswith("tag_"))
        raise AnalysisError(f"--by {', '.join(missing)}: no such column; columns: {shown}")
    out = []
    for values, rows in df.groupby(keys, sort=False, dropna=False):
        label = " ".join(str(v) for v in values if str(v) not in ("", "nan", "None")) or "all"
        where = ", ".join(sorted(set(rows["source"])))
        if len(rows) < 2:
            raise AnalysisError(f"{where}: population {label!r} has {len(rows)} model; needs 2+")
        for col in CHECKED:
            seen = sorted(rows[col].dropna().astype(str).unique())
            if col not in keys and len(seen) > 1:
                raise AnalysisError(
                    f"{where}: population {label!r} mixes {col}s {', '.join(seen)}; "
                    f"separate them with --by {col} (or analyse them apart)"
                )
        out.append((label, rows))
    return out


def _weights(pops, cfg: AnalyzeConfig) -> list:
    """Normalised weights per population: populations of one regime share a flops law."""
    weights: list = [None] * len(pops)
    if not cfg.normalize:
        return weights
    regimes: dict[str, list[int]] = {}
    for i, (_, rows) in enumerate(pops):
        regimes.setdefault(str(rows["regime"].iloc[0]), []).append(i)
    for regime, idx in regimes.items():
        try:
            found = stats.normalize_weights([pops[i][1]["flops"].to_numpy(float) for i in idx])
        except ValueError as exc:
            where = f" in regime {regime}" if regime else ""
            raise AnalysisError(f"populations{where}: {exc}; use --no-normalize") from None
        for i, w in zip(idx, found, strict=True):
            weights[i] = w
    return weights


def _population(label, rows, w, first, cfg: AnalyzeConfig) -> dict:
    e = rows["error"].to_numpy(float)
    seed = cfg.seed
    boot = stats.edf_band(e, w, b=cfg.bootstrap, level=cfg.level, seed=seed)
    grid, bands, _ = boot
    top = stats.quantile_band(e, cfg.q, w, level=cfg.level, boot=boot)
    best_m = stats.best_of_m(e, w, level=cfg.level, boot=boot)
    ks = None
    if first is not None:
        d, p = stats.ks_permutation(first[0], e, first[1], w, cfg.permutations, seed)
        ks = {"d": d, "p": p}
    live = e if w is None else e[w > 0]
    return {
        "label": label,
        "sources": sorted(set(rows["source"])),
        "n": len(e),
        "n_weighted": int(len(live)),
        "best": float(live.min()),
        "median": stats.weighted_quantile(e, 0.5, w),
        "top_q": {"q": cfg.q, "value": top[0], "lo": top[1], "hi": top[2]},
        "share_within": {"percent": cfg.within, "share": stats.share_within(e, cfg.within, w)},
        "ks_vs_first": ks,
        "reweighted": w is not None and bool(np.ptp(w) > 1e-12 * np.max(w)),
        "edf": {"x": grid, "F": bands.value, "lo": bands.lo, "hi": bands.hi},
        "best_of_m": best_m,
    }


def _trends_and_refined(pops, cfg: AnalyzeConfig) -> tuple[list, dict | None]:
    """Per population, the good models' band of each parameter; a refined space of the
    first population when it is a RegNet population of a named space."""
    out = []
    for label, rows in pops:
        names = parameters(rows)
        found = refine.trends(
            {n: rows[n].to_numpy(float) for n in names}, rows["error"].to_numpy(float), cfg.q
        )
        out.append({"label": label, "bands": {n: t["band"] for n, t in found.items()}})
    label, rows = pops[0]
    base = refine.base_space(rows)
    present = [k for k in refine.RANGE_KEYS if k in rows and rows[k].notna().all()]
    if base is None or len(present) < len(refine.RANGE_KEYS):
        return out, None
    refined = refine.refine(
        {k: rows[k].to_numpy(float) for k in present},
        rows["error"].to_numpy(float),
        base,
        q=cfg.q,
        keep=cfg.keep,
        name=f"{label.split(' ')[0]}-refined",
    )
    refined["from"] = label
    return out, refined


def analyze_frame(df, cfg: AnalyzeConfig = AnalyzeConfig()) -> dict:
    """The analysis of every population in `df` (see trials.analysis.sources)."""
    pops = populations(df, cfg.by)
    weights = _weights(pops, cfg)
    first_e = pops[0][1]["error"].to_numpy(float)
    results = []
    for i, ((label, rows), w) in enumerate(zip(pops, weights, strict=True)):
        first = None if i == 0 else (first_e, weights[0])
        results.append(_population(label, rows, w, first, cfg))
    trend_bands, refined = _trends_and_refined(pops, cfg)
    return {
        "config": asdict(cfg),
        "populations": results,
        "trends": trend_bands,
        "refined": refined,
    }


def analyze(refs: list[str], out_dir: str | Path, cfg: AnalyzeConfig = AnalyzeConfig()) -> dict:
    """Read the sources, analyse them and write DIR/analysis.{json,html} and, for a RegNet
    population, DIR/refined_space.yaml; returns the analysis (with `files`)."""
    import yaml

    df = load(refs)
    result = analyze_frame(df, cfg)
    out = prepare_dir(out_dir)
    files = {}
    if result["refined"] is not None:
        path = out / "refined_space.yaml"
        write_file(path, yaml.safe_dump(result["refined"]["space"], sort_keys=False))
        files["refined_space"] = str(path)
    files["html"] = str(write_html(populations(df, cfg.by), result, out, cfg))
    files["json"] = str(out / "analysis.json")
    result["files"] = files
    write_file(out / "analysis.json", dumps_json(result, indent=1) + "\n")
    return result
