"""`ops` profiles fitted from calibration rows: the operation model's costs (`opmodel`) and,
from the same rows, the linear acts + flops fit, in one `RuntimeProfile`.

Above both the profile type (`planner.profiles`) and the operation model
(`planner.profiles.opmodel`), which price profiles without it: the imports go one way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planner.profiles import RuntimeProfile, fit_profile
from planner.profiles._base import MIN_ROWS, ProfileError
from planner.profiles.opmodel import (
    BYTES_PER_ELEMENT,
    MEMORY_FIT,
    TIME_FIT,
    fit_model,
    kinds_used,
)
from spaces.op_walk import op_counts
from spaces.ops import KINDS, Ops
from spaces.specs import spec_from_dict


def _ops_of_row(row: dict, i: int) -> Ops:
    if row.get("spec") is not None:
        return op_counts(spec_from_dict(row["spec"]))
    counts = row.get("ops")
    if not isinstance(counts, dict) or not all(
        isinstance(v, int | float) and v >= 0 for v in counts.values()
    ):
        raise ProfileError(f"calibration row {i} needs a spec or ops (count key -> count >= 0)")
    ops = Ops(0)
    ops.counts = dict(counts)
    return ops


def fit_ops_profile(rows: list[dict], *, batch: int, unit: str = "s/img", **meta) -> RuntimeProfile:
    """An `ops` profile from calibration rows: each has `spec` (a spec dict) or, for a traced
    network fastscale did not define, `ops` (its `spaces.layers.Ops` counts per image,
    "kind.quantity" -> int), `seconds_per_step` at `batch`, and optionally `memory_bytes`
    (peak per step).

    The same rows also give the linear acts + flops fit (c0, c_acts, c_flops) and its
    statistics, so one profile shows both models side by side.
    """
    if len(rows) < MIN_ROWS:
        raise ProfileError(f"need at least {MIN_ROWS} timed models to fit, got {len(rows)}")
    ops_list = [_ops_of_row(r, i) for i, r in enumerate(rows)]
    step = np.array([r["seconds_per_step"] for r in rows], dtype=np.float64)
    costs, time_stats = fit_model(ops_list, step, batch, TIME_FIT, robust=True)
    memory, memory_stats = {}, None
    if all(r.get("memory_bytes") for r in rows):
        mem = np.array([r["memory_bytes"] for r in rows], dtype=np.float64)
        floors = {"saved.elems": BYTES_PER_ELEMENT.get(meta.get("precision"), 0.0)}
        memory, memory_stats = fit_model(ops_list, mem, batch, MEMORY_FIT, floors=floors)
    used = np.stack([kinds_used(o) for o in ops_list]).any(axis=0)
    epoch_images = meta.get("epoch_images")
    to_unit = epoch_images / 60.0 if unit == "min/epoch" else 1.0
    rows = [
        {**r, **{k: int(r[k]) for k in ("flops", "params", "acts")},
         "time": r["seconds_per_step"] / batch * to_unit}
        for r in rows
    ]  # fmt: skip
    shared = ("name", "hardware", "precision", "mode", "source")
    linear = fit_profile(
        [{k: r[k] for k in ("name", "flops", "params", "acts", "time")} for r in rows],
        unit=unit,
        batch=batch,
        **{k: meta[k] for k in shared if k in meta},
    )
    linear_stats = {
        k: getattr(linear, k)
        for k in ("mean_rel_error", "max_rel_error", "loo_mean_rel_error", "loo_max_rel_error")
    }
    fit = {"time": time_stats, "memory": memory_stats, "linear": linear_stats}
    extra = {k: v for k, v in meta.items() if k not in shared}
    return dataclasses.replace(
        linear,
        **extra,
        kind="ops",
        rows=tuple(rows),
        kinds=tuple(k for k, u in zip(KINDS, used, strict=True) if u),
        costs=costs,
        memory=memory,
        fit=fit,
        **{k: time_stats[k] for k in linear_stats},
    )
