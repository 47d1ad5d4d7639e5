"""Predicted vs measured epoch time of a study's own models (`compare` / `report --profile`).

Every trained candidate of a comparison has a measured epoch time. Where the comparison ran
its final timing pass (`trials.compare.timing_pass`: every model timed the same way, one after
another, on CPU with one thread on the process' CPU clock), that measurement is used, at
that pass's batch size; otherwise the trainer's own epoch time at the training batch (taken
while other trials shared the machine). A runtime profile predicts it from the network's
operations: seconds per image at that batch × images per epoch. The check reports the
error per model and overall — how far the profile can be trusted for the plans it ranks.
A profile calibrated under other conditions (threads, clock, hardware) shows a common scale
error; Pearson r says whether it still ranks the models right.
"""

from __future__ import annotations

import numpy as np

from planner.profiles import load_profile
from spaces.errors import FastscaleError
from spaces.families import FAMILIES
from spaces.specs import spec_from_dict
from trials.study.results import trained_spec

DATASET_IMAGES = {"fashion-mnist": 60_000, "fashion_mnist": 60_000, "fmnist": 60_000}


def _spec_of(row: dict):
    family = row.get("family")
    if family not in FAMILIES:
        return None
    import dataclasses

    fields = {f.name for f in dataclasses.fields(FAMILIES[family])}
    data = {k: row[k] for k in fields if k in row and row[k] is not None}
    data = {k: list(v) if isinstance(v, tuple | np.ndarray) else v for k, v in data.items()}
    return spec_from_dict({"family": family, **data})


def epoch_time_check(results, profile, train: dict, timing: dict | None = None) -> dict:
    """{"rows": per model measured / predicted seconds and relative error, "summary": n,
    median and max |error|, share within ±10 %, Pearson r, "measured": what the measured
    times are} for the finished rows of a results table; `train` is the run's training
    config (batch_size, train_size, dataset, resolution); `timing` the comparison's timing
    pass (compare.json's "timing"), preferred where it timed the model."""

    profile = load_profile(profile)
    dataset = str(train.get("dataset") or "")
    images = train.get("train_size") or DATASET_IMAGES.get(dataset.lower())
    if not images:
        raise FastscaleError(
            f"cannot tell the images per epoch of dataset {dataset!r}: the preset's train "
            "config needs train_size to compare epoch times with a profile"
        )
    per_image_measured = (timing or {}).get("seconds_per_image") or {}
    if per_image_measured:
        batch = int(timing.get("batch_size") or 64)
        images = int(timing.get("epoch_images") or images)
        measured_what = (
            f"the timing pass after training ({timing.get('clock')} clock, "
            f"{timing.get('threads')} thread(s), batch {batch})"
        )
    else:
        batch = int(train.get("batch_size") or 128)
        measured_what = f"each trainer's own epoch time (batch {batch}, while it trained)"
    rows = []
    for row in _networks(results):
        spec = _spec_of(row)
        if spec is not None:
            timed = per_image_measured.get(str(row.get("model")))
            measured = float(timed) * images if timed else float(row["epoch_time"])
            rows.append(_check_row(row, spec, profile, train, batch, images, measured))
    return {"profile": profile.name, "images": int(images), "batch": batch, "rows": rows,
            "measured": measured_what, "summary": _summary(rows)}  # fmt: skip


def _networks(results) -> list[dict]:
    """The trained rows, one per network: finalists retrained with other seeds are the same
    network (first-round rows come first)."""
    seen, out = set(), []
    records = results.to_dict("records")
    for row in sorted(records, key=lambda r: r.get("phase") not in (None, "first")):
        network = str(row.get("model") or row.get("key"))
        if row.get("status") == "done" and row.get("epoch_time") and network not in seen:
            seen.add(network)
            out.append(row)
    return out


def _check_row(row, spec, profile, train, batch, images, measured) -> dict:
    spec = trained_spec(spec, train)
    per_image = profile.price(spec, batch)["seconds_per_image"]
    if per_image is None:
        raise FastscaleError(
            f"profile {profile.name!r} (unit {profile.unit}) gives no seconds per image"
        )
    predicted = float(per_image) * images
    return {
        **{k: row.get(k) for k in ("key", "model", "method", "strategy", "regime")},
        "resolution": int(spec.resolution),
        "measured_s": measured,
        "predicted_s": predicted,
        "error": (predicted - measured) / measured,
    }


def _summary(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    err = np.abs([r["error"] for r in rows])
    meas = np.array([r["measured_s"] for r in rows])
    pred = np.array([r["predicted_s"] for r in rows])
    r = float(np.corrcoef(pred, meas)[0, 1]) if len(rows) > 2 and meas.std() > 0 else None
    return {
        "n": len(rows),
        "median_abs_error": float(np.median(err)),
        "max_abs_error": float(err.max()),
        "within_10pct": float(np.mean(err <= 0.10)),
        "pearson_r": r,
    }
