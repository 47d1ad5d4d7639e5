"""The range a profile was calibrated on, and one warning line when a query leaves it.

A profile predicts well where it was measured: its batch (memory and per-call overheads
scale with it), its resolutions and widths (the operation costs are fitted there), its
operation kinds (an unseen kind is refused outright: `opmodel.check_kinds`). Outside that
range it extrapolates, and its own held-out check says how far to trust it even inside.
`calibrated_range` is the record (stored in profiles written by `fastscale calibrate` as
`calibrated_range`; derived from the stored rows for older profiles, or None — "range
unknown" — when the rows say nothing); `coverage_warning` compares a query with it.
"""

from __future__ import annotations

import math

from spaces.units import format_quantity

MAX_HELD_OUT_ERROR = 0.10  # a held-out mean relative error above this is worth a warning


def _span(values) -> list | None:
    values = [v for v in values if v is not None]
    return [min(values), max(values)] if values else None


def _held_out(profile) -> dict:
    """Held-out (leave-one-out) mean relative errors: time, and memory when modelled."""
    out = {"time_mean_rel_error": profile.loo_mean_rel_error}
    time = (profile.fit or {}).get("time") or {}
    if "loo_within_10pct" in time:
        out["time_within_10pct"] = time["loo_within_10pct"]
    memory = (profile.fit or {}).get("memory") or {}
    if memory:
        out["memory_mean_rel_error"] = memory.get("loo_mean_rel_error")
    return out


def calibrated_range(profile) -> dict | None:
    """{batch, resolutions [lo, hi], widths [lo, hi], flops [lo, hi], acts [lo, hi], kinds,
    device, held_out} of the profile's calibration; the stored record when there is one,
    else derived from its rows; None when neither says anything."""
    stored = getattr(profile, "calibrated_range", None)
    if stored:
        return dict(stored)
    rows = list(profile.rows or ())
    if not rows:
        return None
    specs = [r["spec"] for r in rows if isinstance(r.get("spec"), dict)]
    widths = [w for s in specs for w in (s.get("widths") or ())]
    resolutions = [r.get("resolution") or (r.get("spec") or {}).get("resolution") for r in rows]
    return {
        "batch": profile.batch,
        "resolutions": _span(resolutions),
        "widths": _span(widths),
        "flops": _span(r.get("flops") for r in rows),
        "acts": _span(r.get("acts") for r in rows),
        "kinds": list(profile.kinds),
        "device": profile.device or None,
        "held_out": _held_out(profile),
    }


def _outside(span, values) -> tuple[float, float] | None:
    """(lowest, highest) of `values` when some lie outside [lo, hi], else None."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not span or not values:
        return None
    lo, hi = min(values), max(values)
    return (lo, hi) if lo < span[0] or hi > span[1] else None


def _range_text(lo, hi, unit="") -> str:
    return f"{lo:g}{unit}" if lo == hi else f"{lo:g}–{hi:g}{unit}"


def coverage_warning(
    profile,
    *,
    batch=None,
    resolutions=(),
    widths=(),
    flops=(),
    acts=(),
    spec_ref=None,
    add_ref=None,
) -> str | None:
    """One line when the query (batch, resolutions, stage widths, flops, acts) lies outside
    the profile's calibrated range or its held-out error exceeds MAX_HELD_OUT_ERROR, ending
    with the `fastscale calibrate` command that would cover it; None when all is inside.
    `add_ref` is a traced model the command should time too (`calibrate --add`)."""
    rng = calibrated_range(profile)
    if rng is None:
        return None  # range unknown: nothing to compare with (docs/planner.md)
    problems = []
    if batch is not None and rng.get("batch") is not None and int(batch) != int(rng["batch"]):
        problems.append(f"batch {batch} (calibrated at {rng['batch']})")
    checks = (
        ("resolutions", resolutions, "px", "resolution"),
        ("widths", widths, "", "widths"),
    )
    if profile.kind == "linear":  # a linear profile knows only complexity
        checks += (("flops", flops, "", "flops"), ("acts", acts, "", "acts"))
    for key, values, unit, word in checks:
        out = _outside(rng.get(key), values)
        if out:
            fmt = _quantity if key in ("flops", "acts") else _range_text
            problems.append(f"{word} {fmt(*out, unit)} (calibrated {fmt(*rng[key], unit)})")
    errors = {
        k: v for k, v in (rng.get("held_out") or {}).items()
        if k.endswith("mean_rel_error") and v is not None and v > MAX_HELD_OUT_ERROR
    }  # fmt: skip
    if errors:
        problems.append(
            "held-out error "
            + ", ".join(f"{v:.0%} ({k.split('_')[0]})" for k, v in errors.items())
            + f" above {MAX_HELD_OUT_ERROR:.0%}"
        )
    if not problems:
        return None
    return (
        f"profile {profile.name!r} extrapolates here: {'; '.join(problems)}; to cover it: "
        + calibrate_command(
            profile, rng, batch, resolutions, widths, spec_ref, bool(errors), add_ref
        )
    )


def _quantity(lo, hi, unit="") -> str:
    return format_quantity(lo) if lo == hi else f"{format_quantity(lo)}–{format_quantity(hi)}"


def calibrate_command(
    profile, rng, batch, resolutions, widths, spec_ref, noisy: bool, add_ref=None
) -> str:
    """The `fastscale calibrate` command that would measure the query's range."""
    parts = ["fastscale calibrate"]
    if add_ref:  # a traced model: time it beside the diverse set
        parts.append(f"--add {add_ref}")
    if widths and rng.get("widths") and max(widths) > rng["widths"][1]:
        parts.append(spec_ref or "SPEC")  # its scaled copies reach the wide stages
    if profile.device:
        parts.append(f"--device {profile.device}")
    if batch or rng.get("batch"):
        parts.append(f"--batch-size {batch or rng['batch']}")
    top = max([r for r in resolutions if r] or [0])
    if top:
        parts.append(f"--resolution {int(top)}")
    if noisy:
        # more rounds than the timing protocol's 3 (trials.timing.protocol) tame a noisy
        # machine's readings
        parts.append("--rounds 5")
    parts.append("--out PROFILE")
    return "`" + " ".join(parts) + "`"
