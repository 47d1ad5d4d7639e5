"""Runtime profiles for one hardware, precision, batch, mode and clock (the paper's §4 and
Figure 2; docs/planner.md).

Two kinds:

- `linear`: time ≈ c0 + c_acts·acts + c_flops·flops. Activations drive runtime on
  memory-bound accelerators and flops take over for large models, so the model keeps both
  with non-negative coefficients, fitted by non-negative least squares on relative error (a
  3 min epoch matters as much as a 40 min one). The shipped `v100x8-paper` profile is of
  this kind: published epoch times support nothing finer.
- `ops`: step time and peak training memory as sums of per-operation costs
  (`planner.profiles.opmodel`), fitted on timings of a diverse calibration set
  (`planner.profiles.opfit`). It also carries the linear fit of the same rows, for
  comparison.

A profile stores its fit quality — Pearson r of time against acts, flops and params,
in-sample and leave-one-out relative errors — and the rows it was fitted on.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge

from planner.profiles._base import MIN_ROWS, ProfileError
from planner.profiles.opmodel import check_ops_fields, price
from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.io import dumps_json, parse_data, read_text_file
from spaces.registry import get_model
from spaces.safe_write import write_file
from spaces.specs import INFO_KEYS, spec_from_dict
from spaces.units import UnitError, parse_quantity
from spaces.validate import check_positive, dataclass_from_mapping

PROFILE_DIR = Path(__file__).parent
TIME_KEYS = ("time", "seconds", "minutes")
Cost = Annotated[float, Ge(0)]  # a coefficient: finite and >= 0 (spaces.schema checks it)


@dataclass(frozen=True)
class RuntimeProfile:
    """Coefficients and fit statistics of one measured runtime model."""

    name: str
    c0: Cost
    c_acts: Cost
    c_flops: Cost
    unit: str = "s"
    hardware: str = ""
    precision: str = ""
    batch: Annotated[int, Ge(1)] | None = None  # ops profiles need one
    mode: str = "train"
    source: str = ""
    n: int = 0
    pearson_acts: float | None = None
    pearson_flops: float | None = None
    pearson_params: float | None = None
    mean_rel_error: float | None = None  # in-sample
    max_rel_error: float | None = None
    loo_mean_rel_error: float | None = None  # leave-one-out
    loo_max_rel_error: float | None = None
    rows: tuple[dict, ...] = field(default=(), repr=False)
    kind: Literal["linear", "ops"] = "linear"  # files without it are linear
    device: str = ""
    clock: str = ""
    threads: int | None = None
    epoch_images: int | None = None  # images per epoch, for unit "min/epoch"
    kinds: tuple[str, ...] = ()  # ops: operation kinds the calibration covered
    # ops: time feature -> seconds per unit, per step; memory feature -> bytes per unit
    costs: dict[str, Cost] = field(default_factory=dict)
    memory: dict[str, Cost] = field(default_factory=dict)
    fit: dict = field(default_factory=dict)  # ops: {"time"|"memory"|"linear": statistics}
    # what the calibration covered (planner.profiles.coverage); {} in older profiles
    calibrated_range: dict = field(default_factory=dict)

    def predict(self, acts, flops):
        """The linear model's time (in `unit`) for scalars or arrays of acts and flops (an
        `ops` profile carries the linear fit of its calibration rows too)."""
        return predict(self, acts, flops)

    def price(self, what, batch: int | None = None) -> dict:
        """Time and peak memory of a spec or of `spaces.ops` counts (arrays for a batch):
        seconds_per_step, seconds_per_image, runtime (in `unit`), memory_bytes (None when
        the profile has no memory model). `batch` defaults to the profile's."""
        return price(self, what, batch)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [dict(r) for r in self.rows]
        d["kinds"] = list(self.kinds)
        return d

    def save(self, path: str | Path) -> None:
        save(self, path)


def predict(profile: RuntimeProfile, acts, flops):
    """c0 + c_acts·acts + c_flops·flops; a time past the largest float (coefficients no
    machine has) is refused in one line instead of numpy's overflow warning and inf."""
    acts = np.asarray(acts, dtype=np.float64)
    flops = np.asarray(flops, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        t = profile.c0 + profile.c_acts * acts + profile.c_flops * flops
    if not np.all(np.isfinite(t) | ~(np.isfinite(acts) & np.isfinite(flops))):
        raise ProfileError(
            f"profile {profile.name!r} predicts a time beyond floating point (c0 "
            f"{profile.c0:g}, c_acts {profile.c_acts:g}, c_flops {profile.c_flops:g}); "
            "its coefficients are not a machine's: refit it with `fastscale profile fit`"
        )
    return float(t) if t.ndim == 0 else t


def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a handful of columns: the optimum is the unconstrained
    fit on its own support, so try every support and keep the best feasible one."""
    n = a.shape[1]
    scale = np.maximum(np.abs(a).max(0), 1e-300)
    a = a / scale
    best, best_res = np.zeros(n), float(b @ b)
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            x, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if np.any(x < 0):
                continue
            full = np.zeros(n)
            full[list(cols)] = x
            res = float(np.sum((a @ full - b) ** 2))
            if res < best_res - 1e-15 * max(best_res, 1):
                best, best_res = full, res
    return best / scale


def pearson(x, y, min_points: int = 2) -> float | None:
    """Pearson r over the pairs where both are finite; None (JSON null) when fewer than
    `min_points` pairs remain or either side is constant (r is undefined, not NaN)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < max(2, min_points) or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _coefs(flops, acts, time, weighting):
    a = np.stack([np.ones_like(time), acts, flops], axis=1)
    w = 1 / time if weighting == "relative" else np.ones_like(time)
    return nnls(a * w[:, None], time * w)


def _complexity_of(row: dict) -> tuple[float, float, float | None]:
    """flops, acts, params of a timings row: given directly, or from a model name / spec."""
    if "flops" in row and "acts" in row:
        try:
            vals = [parse_quantity(row[k], what=k) for k in ("flops", "acts")]
            params = row.get("params")
            p = parse_quantity(params, what="params") if params not in (None, "") else None
        except UnitError as exc:
            raise ProfileError(str(exc)) from None
        return float(vals[0]), float(vals[1]), None if p is None else float(p)
    if row.get("model"):
        spec = get_model(str(row["model"]))
    elif isinstance(row.get("spec"), dict):
        spec = spec_from_dict(row["spec"])
    else:
        extra = set(TIME_KEYS) | {"model", "spec", *INFO_KEYS}
        fields = {k: v for k, v in row.items() if k not in extra}
        if not fields:
            raise ProfileError(
                "a timings row needs flops and acts, a `model` name, or spec fields, plus time"
            )
        spec = spec_from_dict(fields)
    c = complexity(spec)
    return float(c.flops), float(c.acts), float(c.params)


def _time_of(row: dict) -> float:
    key = next((k for k in TIME_KEYS if k in row and row[k] not in (None, "")), None)
    if key is None:
        raise ProfileError(f"a timings row has no time column (one of {', '.join(TIME_KEYS)})")
    return check_positive(row[key], "time", ProfileError)


def _clean_rows(rows) -> list[dict]:
    """flops, acts, params, time (and model/name) of each timing row, or one clear error."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    rows = list(rows)
    if len(rows) < MIN_ROWS:
        raise ProfileError(
            f"need at least {MIN_ROWS} timing rows to fit a profile, got {len(rows)}"
        )
    clean = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ProfileError(f"timings row {i} is not a mapping of columns")
        try:
            f, a, p = _complexity_of(row)
            t = _time_of(row)
        except FastscaleError as exc:
            raise ProfileError(f"timings row {i}: {exc}") from None
        rec = {"flops": f, "acts": a, "params": p, "time": t}
        for k in ("model", "name"):
            if row.get(k):
                rec[k] = str(row[k])
        clean.append(rec)
    return clean


def _linear_loo(flops, acts, time, weighting: str) -> list[float]:
    """Relative error of each row predicted by the linear fit of all the others."""
    loo = []
    for i in range(len(time)):
        keep = np.arange(len(time)) != i
        ci = _coefs(flops[keep], acts[keep], time[keep], weighting)
        loo.append(abs(ci[0] + ci[1] * acts[i] + ci[2] * flops[i] - time[i]) / time[i])
    return loo


def fit_profile(
    rows,
    name: str = "custom",
    unit: str = "s",
    hardware: str = "",
    precision: str = "",
    batch: int | None = None,
    mode: str = "train",
    source: str = "",
    weighting: str = "relative",
) -> RuntimeProfile:
    """Fit a profile from timing rows (list of dicts or a DataFrame): each row has `time` and
    either flops + acts (+ params) or a `model` name / `spec` dict / spec fields."""
    if weighting not in ("relative", "absolute"):
        raise ProfileError(f"weighting must be relative or absolute, got {weighting!r}")
    clean = _clean_rows(rows)
    flops, acts, time = (np.array([r[k] for r in clean]) for k in ("flops", "acts", "time"))
    params = [r["params"] for r in clean]
    c = _coefs(flops, acts, time, weighting)
    rel = np.abs(c[0] + c[1] * acts + c[2] * flops - time) / time
    loo = _linear_loo(flops, acts, time, weighting)
    has_params = all(p is not None for p in params)
    return RuntimeProfile(
        name=name,
        c0=float(c[0]),
        c_acts=float(c[1]),
        c_flops=float(c[2]),
        unit=unit,
        hardware=hardware,
        precision=precision,
        batch=batch,
        mode=mode,
        source=source,
        n=len(time),
        pearson_acts=pearson(acts, time),
        pearson_flops=pearson(flops, time),
        pearson_params=pearson(np.array(params, float), time) if has_params else None,
        mean_rel_error=float(rel.mean()),
        max_rel_error=float(rel.max()),
        loo_mean_rel_error=float(np.mean(loo)),
        loo_max_rel_error=float(np.max(loo)),
        rows=tuple(clean),
    )


def save(profile: RuntimeProfile, path: str | Path) -> None:
    write_file(path, dumps_json(profile.to_dict(), indent=2, ensure_ascii=False) + "\n")


_NUMBERS = ("c0", "c_acts", "c_flops")


def from_dict(data, where: str = "profile") -> RuntimeProfile:
    """A profile file's mapping through its schema (the annotations of RuntimeProfile: types,
    finite coefficients >= 0, kind); an `ops` profile also needs what its model prices with."""
    profile = dataclass_from_mapping(
        RuntimeProfile, data, where, ProfileError, required=("name", *_NUMBERS)
    )
    if profile.kind == "ops":
        check_ops_fields(data, where)
    return dataclasses.replace(profile, rows=tuple(profile.rows), kinds=tuple(profile.kinds))


def load(path: str | Path) -> RuntimeProfile:
    text = read_text_file(path, "profile", ProfileError)
    data = parse_data(text, True, f"profile {str(path)!r}", ProfileError)
    return from_dict(data, where=f"profile {str(path)!r}")


def list_profiles() -> list[str]:
    """Names of the profiles shipped with fastscale."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path) -> RuntimeProfile:
    """A shipped profile by name, or a profile JSON file."""
    if isinstance(name_or_path, RuntimeProfile):
        return name_or_path
    path = Path(name_or_path)
    if os.path.lexists(path):
        return load(path)
    shipped = PROFILE_DIR / f"{name_or_path}.json"
    if len(str(name_or_path)) < 256 and shipped.exists():
        return load(shipped)
    raise ProfileError(
        f"unknown profile {str(name_or_path)!r}: not a file; shipped profiles: "
        f"{', '.join(list_profiles()) or 'none'}"
    )


def read_timings(path: str | Path) -> list[dict]:
    """Rows of a timings file: CSV with a header, or JSON (a list of rows or {"rows": [...]})."""
    path = Path(path)
    text = read_text_file(path, "timings", ProfileError)
    if path.suffix.lower() == ".json":
        data = parse_data(text, True, f"timings {str(path)!r}", ProfileError)
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ProfileError(f"timings {str(path)!r} must hold a list of rows")
        return rows
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise ProfileError(f"timings {str(path)!r} has no CSV header")
    return [
        {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in r.items() if k}
        for r in reader
    ]
