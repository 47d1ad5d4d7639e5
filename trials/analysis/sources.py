"""Reading trained populations for `fastscale analyze`: a study directory, a compare
directory, a results table (CSV/parquet) or a pycls sweep's collected `sweep.json`, all into
one frame: source, space, regime, dataset, resolution, error (a fraction), flops and the
design parameters (RegNet: depth, w0, wa, wm, group_width, bottleneck; stage-level specs:
d1..dk, w1..wk). Each bad source is one AnalysisError naming it. See docs/analysis.md.

pycls's format (facebookresearch/pycls, tools/sweep_collect.py and pycls/sweep/analysis.py,
read at the repository's current main): a JSON list with one record per job, each holding
`cfg` (the job's full pycls config), `complexity` ({flops, params, acts}) and the sorted log
data per type, e.g. `test_epoch` / `test_ema_epoch` with per-epoch lists `min_top1_err`
(percent), `epoch_ind`, `epoch_max`. pycls's analysis keeps jobs with test data and takes
min(test_ema_epoch.min_top1_err) as the error (test_epoch where EMA was not logged).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np

from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.families import FAMILIES
from spaces.io import first_line, short_path
from spaces.pycls_reader import spec_from_pycls
from spaces.specs import spec_from_dict
from spaces.units import format_quantity
from trials.study.results import load_results
from trials.study.store import StudyStore

REGNET_PARAMS = ("depth", "w0", "wa", "wm", "group_width", "bottleneck")
META_FILE = "compare.json"  # what makes a study directory a compare directory
MAX_SWEEP_BYTES = 2 * 1024**3  # a collected sweep holds every job's epoch logs
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
STAGE_LISTS = ("depths", "widths", "group_widths", "bottlenecks", "strides", "kernels")


class AnalysisError(FastscaleError):
    """A source or a population that cannot be analysed."""


def read_source(ref: str):
    """The trained models of one source, as a frame (see the module docstring)."""
    path = Path(ref)
    shown = short_path(ref)
    if path.is_dir():
        if (path / META_FILE).is_file():
            df = _compare_dir(path)
        elif (path / "study.json").is_file():
            df = _study_dir(path)
        else:
            raise AnalysisError(f"{shown}: a directory with neither study.json nor {META_FILE}")
    elif not path.exists():
        raise AnalysisError(f"{shown}: no such file or directory")
    elif path.suffix.lower() in TABLE_SUFFIXES:
        df = _table(path)
    elif path.suffix.lower() == ".json":
        df = _pycls_sweep(path)
    else:
        raise AnalysisError(
            f"{shown}: not a study or compare directory, a .csv/.parquet table or a pycls sweep.json"
        )
    df["source"] = shown
    return _finish(df, shown)


def _study_frame(path: Path, definition: dict):
    df = load_results(path)
    df = df[df["status"] == "done"].copy()
    train = definition.get("train") or {}
    label = base = definition.get("space")
    if isinstance(label, dict):  # a design-space file's content
        label, base = label.get("name"), label.get("base")
    df["base_space"] = base
    if "space" not in df or df["space"].isna().all():
        df["space"] = label or path.name
    if "regime" not in df or df["regime"].isna().all():
        regime = definition.get("regime")
        df["regime"] = format_quantity(regime, "F") if regime else ""
    df["dataset"] = train.get("dataset") or "fashion-mnist"
    if train.get("resolution"):
        df["resolution"] = int(train["resolution"])
    return df


def _study_dir(path: Path):
    try:
        definition = StudyStore(path).check()
    except FastscaleError as exc:
        raise AnalysisError(f"{short_path(path)}: {first_line(exc)}") from None
    return _study_frame(path, definition)


def _compare_dir(path: Path):
    """A comparison's searched populations (method `search`, first round): the random
    samples of each space and regime; its scaled and hybrid models are single picks."""
    try:
        meta = json.loads((path / META_FILE).read_text())
        definition = StudyStore(path).check()
    except (OSError, ValueError, FastscaleError) as exc:
        raise AnalysisError(f"{short_path(path)}: {first_line(exc)}") from None
    df = _study_frame(path, definition)
    if isinstance(meta, dict) and meta.get("keys"):
        df = df[df["key"].isin(meta["keys"])]
    for col, keep in (("method", "search"), ("phase", "first")):
        if col in df:
            df = df[df[col] == keep]
    return df


def _table(path: Path):
    import pandas as pd

    shown = short_path(path)
    try:
        df = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # a parser's many error types: one line names the file
        raise AnalysisError(f"{shown}: cannot read the table: {first_line(exc)}") from None
    if "error" not in df:
        raise AnalysisError(
            f"{shown}: no error column (columns: {', '.join(map(str, df.columns))})"
        )
    if "spec" in df:
        df = _expand_spec_column(df, shown)
    for col in STAGE_LISTS:  # a CSV holds stage lists as JSON text, parquet as arrays
        if col in df:
            df[col] = [_json_list(v, col, shown) for v in df[col]]
    if not ({"w0", "depths"} & set(df.columns)) and "flops" not in df:
        raise AnalysisError(
            f"{shown}: needs a spec column (JSON spec mappings) or spec fields (w0, wa, ... or "
            "depths, widths, ...) or at least a flops column"
        )
    if "space" not in df:
        df["space"] = path.stem
    if "regime" not in df:
        df["regime"] = ""
    errors = pd.to_numeric(df["error"], errors="coerce")
    top = errors[np.isfinite(errors)].max()
    if top > 100:
        raise AnalysisError(f"{shown}: errors must be fractions (0..1) or percent (0..100)")
    if top > 1:  # a table in percent, as pycls logs errors
        errors = errors / 100
    df["error"] = errors
    return df


def _json_list(value, col: str, shown: str):
    if isinstance(value, np.ndarray):  # parquet's list columns
        return value.tolist()
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        raise AnalysisError(f"{shown}: column {col} must hold lists such as [1, 2, 4, 1]")
    return parsed


def _expand_spec_column(df, shown: str):
    import pandas as pd

    try:
        specs = [s if isinstance(s, dict) else json.loads(s) for s in df["spec"]]
        fields = [spec_from_dict(s).to_dict() for s in specs]
    except (ValueError, TypeError, FastscaleError) as exc:
        raise AnalysisError(f"{shown}: spec column holds a bad spec: {first_line(exc)}") from None
    extra = pd.DataFrame(fields, index=df.index)
    keep = [c for c in df.columns if c != "spec" and c not in extra.columns]
    return pd.concat([df[keep], extra], axis=1)


def _read_sweep(path: Path):
    shown = short_path(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise AnalysisError(f"{shown}: cannot read a pycls sweep: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SWEEP_BYTES:
        raise AnalysisError(f"{shown}: not a regular file of at most {MAX_SWEEP_BYTES:,} bytes")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        raise AnalysisError(f"{shown}: cannot read a pycls sweep: {first_line(exc)}") from None


def _sweep_error(record: dict):
    """pycls's error of a job: the best EMA test error if logged, else the best test error."""
    for kind in ("test_ema_epoch", "test_epoch"):
        errs = (record.get(kind) or {}).get("min_top1_err")
        if isinstance(errs, list) and errs:
            return min(errs) / 100
    return None


def _pycls_sweep(path: Path):
    import pandas as pd

    shown = short_path(path)
    sweep = _read_sweep(path)
    if not isinstance(sweep, list) or not all(
        isinstance(r, dict) and isinstance(r.get("cfg"), dict) for r in sweep
    ):
        raise AnalysisError(
            f"{shown}: not a pycls sweep.json (a JSON list of job records, each with cfg, "
            "complexity and test_epoch, as tools/sweep_collect.py writes)"
        )
    rows = []
    for i, record in enumerate(sweep):
        error = _sweep_error(record)
        if error is None:
            continue  # a job that has not tested yet (pycls's analysis skips it too)
        cfg = record["cfg"]
        try:
            spec = spec_from_pycls(cfg)
        except FastscaleError as exc:
            raise AnalysisError(f"{shown}: job {i}: {first_line(exc)}") from None
        train = cfg.get("TRAIN") or {}
        cx = record.get("complexity") or {}
        row = {**spec.to_dict(), "error": error}
        row["flops"] = cx.get("flops") or complexity(spec).flops
        row["dataset"] = str(train.get("DATASET", "imagenet"))
        row["resolution"] = int(train.get("IM_SIZE", spec.resolution))
        rows.append(row)
    if not rows:
        raise AnalysisError(f"{shown}: the sweep holds no job with test errors yet")
    df = pd.DataFrame(rows)
    df["space"] = path.parent.name or path.stem  # pycls writes ROOT_DIR/NAME/sweep.json
    df["regime"] = ""
    return df


def _finish(df, shown: str):
    """Keep the trained rows, add flops where missing and the per-stage columns."""
    import pandas as pd

    if "error" not in df:
        raise AnalysisError(f"{shown}: no error column")
    errors = pd.to_numeric(df["error"], errors="coerce")
    df = df[np.isfinite(errors)].copy()  # failed or untrained models carry no error
    if df.empty:
        raise AnalysisError(f"{shown}: no trained model with a finite error")
    df["error"] = df["error"].astype(float)
    if (df["error"] < 0).any():
        raise AnalysisError(f"{shown}: errors must be >= 0 (a fraction, or percent)")
    flops = pd.to_numeric(df["flops"], errors="coerce") if "flops" in df else None
    if flops is None or flops.isna().any():
        df["flops"] = flops
        df["flops"] = [_flops(r, shown) for r in df.to_dict("records")]
    df["flops"] = df["flops"].astype(float)
    if not (np.isfinite(df["flops"]) & (df["flops"] > 0)).all():
        raise AnalysisError(f"{shown}: flops must be positive finite numbers")
    if "depths" in df:
        for key, col in (("d", "depths"), ("w", "widths")):
            stages = df[col].dropna()
            for k in range(max((len(v) for v in stages), default=0)):
                df[f"{key}{k + 1}"] = [_at(v, k) for v in df[col]]
    for col in ("dataset", "resolution"):
        if col not in df:
            df[col] = None
    df["regime"] = df["regime"].fillna("").astype(str)
    df["space"] = df["space"].fillna("").astype(str)
    return df.reset_index(drop=True)


def _at(values, k: int):
    try:
        return values[k] if len(values) > k else None
    except TypeError:
        return None


def _present(value) -> bool:
    return value is not None and (not isinstance(value, float) or value == value)


def _flops(row: dict, shown: str) -> float:
    if row.get("flops") is not None and row.get("flops") == row.get("flops"):
        return float(row["flops"])
    family = row.get("family") if isinstance(row.get("family"), str) else None
    family = family or ("regnet" if row.get("w0") == row.get("w0") else "anynet")
    keys = FAMILIES[family].FILE_KEYS if family in FAMILIES else ()
    fields = {k: v for k, v in row.items() if k in keys and _present(v)}
    fields["family"] = family
    try:
        return float(complexity(spec_from_dict(fields)).flops)
    except (FastscaleError, TypeError, ValueError) as exc:
        raise AnalysisError(f"{shown}: cannot count a model's flops: {first_line(exc)}") from None


def parameters(df) -> list[str]:
    """The design parameters present in a frame, in a stable order."""
    stage = []
    if "depths" in df:  # d1.., w1.. were expanded from the stage lists (w0 is RegNet's)
        stage = sorted(
            (c for c in df.columns if c[:1] in ("d", "w") and c[1:].isdigit() and c[1:] != "0"),
            key=lambda c: (c[0], int(c[1:])),
        )
    names = [c for c in REGNET_PARAMS if c in df] + stage + ["resolution"]
    from pandas.api.types import is_numeric_dtype

    return [
        c
        for c in names
        if c in df and is_numeric_dtype(df[c]) and df[c].notna().all() and df[c].nunique() > 1
    ]
