"""`fastscale profile fit | show | list | predict`: runtime profiles and what they predict."""

from __future__ import annotations

from pathlib import Path

import click

from planner.profiles import fit_profile, list_profiles, load_profile, read_timings
from planner.profiles.coverage import calibrated_range, coverage_warning
from planner.profiles.opmodel import MEMORY_FEATURES, TIME_FEATURES
from spaces.complexity import complexity
from spaces.io import resolve_labeled
from spaces.outside import is_outside, parse_input_shape
from spaces.units import format_bytes, format_quantity
from trials.cli.common import echo_json, fail, print_table
from trials.training.recipe import MAX_BATCH, MAX_RESOLUTION, MODES

RESOLUTION = click.IntRange(8, MAX_RESOLUTION)
BATCH = click.IntRange(1, MAX_BATCH)


@click.group("profile")
def profile_group():
    """Runtime profiles for one hardware setup: kind `linear` (time ≈ c0 + c_acts·acts +
    c_flops·flops) or `ops` (per-operation costs and a memory model, from `calibrate`)."""


@profile_group.command("fit")
@click.argument("timings", type=click.Path(dir_okay=False))
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="Profile JSON to write."
)
@click.option("--name", help="Profile name (default: the --out file stem).")
@click.option("--unit", default="s", show_default=True, help="Unit of the time column.")
@click.option("--hardware", default="", help="e.g. '1x A100 80GB'.")
@click.option("--precision", default="", help="e.g. fp32, amp.")
@click.option("--batch", type=click.IntRange(min=1), help="Batch size of the timings.")
@click.option("--mode", type=click.Choice(MODES), default="train", show_default=True)
@click.option("--source", default="", help="Where the timings come from.")
@click.option("--json", "as_json", is_flag=True, help="Print the fitted profile as JSON.")
def profile_fit_cmd(timings, out, name, unit, hardware, precision, batch, mode, source, as_json):
    """Fit a profile from TIMINGS (CSV or JSON rows: flops, acts[, params], time — or a
    `model` registry name / spec fields instead of flops and acts)."""

    rows = read_timings(timings)
    prof = fit_profile(
        rows, name=name or Path(out).stem, unit=unit, hardware=hardware, precision=precision,
        batch=batch, mode=mode, source=source or f"fitted from {timings}",
    )  # fmt: skip
    prof.save(out)
    if as_json:
        echo_json(prof.to_dict())
        return
    _print_profile(prof)
    click.echo(f"wrote {out}", err=True)


@profile_group.command("show")
@click.argument("profile")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def profile_show_cmd(profile, as_json):
    """Show a profile (shipped NAME or FILE): coefficients, fit quality, source."""

    prof = load_profile(profile)
    if as_json:
        echo_json(prof.to_dict())
        return
    _print_profile(prof)


@profile_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def profile_list_cmd(as_json):
    """List the profiles shipped with fastscale."""

    profs = [load_profile(n) for n in list_profiles()]
    if as_json:
        echo_json([{k: v for k, v in p.to_dict().items() if k != "rows"} for p in profs])
        return
    print_table(
        [{"name": p.name, "kind": p.kind, "hardware": p.hardware, "mode": p.mode, "unit": p.unit, "rows": p.n,
          "r(acts)": p.pearson_acts, "loo mean err": p.loo_mean_rel_error} for p in profs]
    )  # fmt: skip


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def _r(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _print_profile(p) -> None:
    kind = {"linear": "linear (time = c0 + c_acts·acts + c_flops·flops)",
            "ops": "ops (per-operation costs; time and peak memory)"}[p.kind]  # fmt: skip
    rows = [
        ("kind", kind),
        ("hardware / precision", f"{p.hardware or '-'} / {p.precision or '-'}"),
        ("batch / mode / unit", f"{p.batch or '-'} / {p.mode} / {p.unit}"),
        *([("device / clock / threads", f"{p.device} / {p.clock} / {p.threads}")]
          if p.kind == "ops" else []),
        ("c0" + (" (linear fit)" if p.kind == "ops" else ""), f"{p.c0:.4g} {p.unit}"),
        ("c_acts", f"{p.c_acts * 1e6:.4g} {p.unit} per M acts"),
        ("c_flops", f"{p.c_flops * 1e9:.4g} {p.unit} per GF"),
        ("rows", str(p.n)),
        *([("operation kinds calibrated", " ".join(p.kinds))] if p.kind == "ops" else []),
        ("pearson r: acts / flops / params",
         f"{_r(p.pearson_acts)} / {_r(p.pearson_flops)} / {_r(p.pearson_params)}"),
        ("rel. error: mean / max", f"{_pct(p.mean_rel_error)} / {_pct(p.max_rel_error)}"),
        ("leave-one-out: mean / max",
         f"{_pct(p.loo_mean_rel_error)} / {_pct(p.loo_max_rel_error)}"),
        *_fit_rows(p),
        ("calibrated on", _range_text(p)),
    ]  # fmt: skip
    print_table([{"field": k, "value": v} for k, v in rows], title=f"profile {p.name}")
    if p.kind == "ops":
        _print_costs(p)
    if p.source:
        click.echo(f"source: {p.source}")


def _range_text(p) -> str:
    """Where the profile's predictions are measured rather than extrapolated."""
    rng = calibrated_range(p)
    if rng is None:
        return "range unknown (no rows)"
    parts = [f"batch {rng.get('batch') or '-'}"]
    for key, unit in (("resolutions", " px"), ("widths", " wide")):
        if rng.get(key):
            parts.append(f"{rng[key][0]}–{rng[key][1]}{unit}")
    if rng.get("flops"):
        lo, hi = rng["flops"]
        parts.append(f"{format_quantity(lo, 'F')}–{format_quantity(hi, 'F')}")
    return ", ".join(parts)


def _fit_rows(p) -> list[tuple[str, str]]:
    if p.kind != "ops":
        return []
    lin, mem = p.fit.get("linear") or {}, p.fit.get("memory")
    rows = [
        (
            "linear fit of the same rows, leave-one-out",
            f"{_pct(lin.get('loo_mean_rel_error'))} / {_pct(lin.get('loo_max_rel_error'))}",
        )
    ]
    if mem:
        rows.append(
            (
                "memory: leave-one-out mean / max",
                f"{_pct(mem['loo_mean_rel_error'])} / {_pct(mem['loo_max_rel_error'])}",
            )
        )
    return rows  # fmt: skip


def _print_costs(p) -> None:
    """The fitted per-operation costs, in readable units."""

    def unit(name, table):
        kind, keys, per_image = table[name]
        if name == "step":
            return 1.0, "per step"
        if name in ("calls", "params"):
            return 1.0, f"per {name[:-1]}"
        quantity = name.rsplit(".", 1)[-1]  # "conv.flops" -> flops; "elems"
        return 1e6, f"per M {quantity}" + (" per image" if per_image else "")

    rows = []
    for name, v in p.costs.items():
        k, what = unit(name, TIME_FEATURES)
        rows.append({"model": "time", "feature": name, "cost": f"{v * k * 1e3:.4g} ms {what}"})
    for name, v in p.memory.items():
        _kind, _keys, per_image = MEMORY_FEATURES[name]
        what = "per step" if name == "step" else f"per {name.split('.')[-1].rstrip('s')}"
        rows.append({"model": "memory", "feature": name, "cost": f"{v:.4g} B {what}"})
    print_table(rows, title=f"costs per step at batch {p.batch}")


@profile_group.command("predict")
@click.argument("profile")
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--resolution", "-r", type=RESOLUTION, help="Input resolution [default: the spec's].")
@click.option("--batch-size", type=BATCH, help="[default: the profile's].")
@click.option("--input-shape", metavar="C,H,W", help="Input shape of a traced model (no batch).")
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="A traced factory's keyword arguments."
)
@click.option("--json", "as_json", is_flag=True, help="One object per spec (a list if several).")
def profile_predict_cmd(profile, specs, resolution, batch_size, input_shape, kwargs_json, as_json):
    """Predicted training-step time and peak memory of each SPEC (registry name, spec file, or
    a traced PyTorch model: timm:/torchvision: name, package.module:function, .pt/.pt2 file)
    with PROFILE (shipped NAME or FILE). Memory needs an `ops` profile."""

    prof = load_profile(profile)
    if batch_size is None and prof.batch is None and prof.kind == "ops":
        fail(f"profile {prof.name!r} has no batch size; give --batch-size")
    shape = parse_input_shape(input_shape) if input_shape else None
    records, as_list, widths, resolutions, specs_seen = [], len(specs) > 1, [], [], []
    traced_seen = []
    for ref in specs:
        if is_outside(ref):
            from spaces import trace

            shape_of = trace.input_shape_of(shape, resolution)
            traced = trace.trace_model(ref, shape_of, trace.parse_kwargs(kwargs_json))
            items = [(ref, "x".join(map(str, shape_of)), trace.priced_ops(traced), traced)]
            resolutions.append(shape_of[-1])
            traced_seen.append(ref)
        else:
            labeled, many = resolve_labeled([ref])
            as_list |= many
            items = []
            for label, spec in labeled:
                spec = spec.with_resolution(resolution) if resolution is not None else spec
                items.append((label, spec.resolution, spec, complexity(spec)))
                widths += list(spec.stages().widths)
                resolutions.append(spec.resolution)
                specs_seen.append(label)
        for label, res, what, cx in items:
            records.append(_prediction(prof, label, res, prof.price(what, batch_size), cx))
    warning = coverage_warning(
        prof,
        batch=records[0]["batch"],
        resolutions=resolutions,
        widths=widths,
        flops=[r["flops"] for r in records],
        acts=[r["acts"] for r in records],
        spec_ref=specs_seen[0] if len(records) == 1 and specs_seen else None,
        add_ref=traced_seen[0] if len(records) == 1 and traced_seen else None,
    )
    if warning:
        click.echo(f"fastscale: warning: {warning}", err=True)
    if as_json:
        echo_json(records if as_list else records[0])
        return
    _print_predictions(prof, records)


def _prediction(prof, label, resolution, priced, cx) -> dict:
    memory = priced["memory_bytes"]
    return {
        "name": label,
        "resolution": resolution,
        "flops": cx.flops,
        "acts": cx.acts,
        "params": cx.params,
        "batch": priced["batch"],
        **{k: _plain(priced[k]) for k in ("seconds_per_image", "seconds_per_step")},
        "runtime": _plain(priced["runtime"]),
        "memory_bytes": None if memory is None else int(round(float(memory))),
        "memory_bytes_per_image": None if memory is None else float(memory) / priced["batch"],
        "unit": prof.unit,
        "profile": prof.name,
        "kind": prof.kind,
    }


def _plain(v):
    return None if v is None else float(v)


def _print_predictions(prof, records) -> None:
    def ms(v):
        return None if v is None else v * 1e3

    rows = [
        {
            "model": r["name"],
            "res": r["resolution"],
            "flops": format_quantity(r["flops"], "F"),
            "acts": format_quantity(r["acts"]),
            "ms/step": ms(r["seconds_per_step"]),
            "ms/image": ms(r["seconds_per_image"]),
            f"runtime ({prof.unit})": r["runtime"],
            "memory/step": None if r["memory_bytes"] is None else format_bytes(r["memory_bytes"]),
            "memory/image": None
            if r["memory_bytes_per_image"] is None
            else format_bytes(r["memory_bytes_per_image"]),
        }
        for r in records
    ]
    batch = records[0]["batch"]
    print_table(rows, title=f"profile {prof.name} ({prof.kind}), batch {batch or '-'}")
    if prof.kind == "linear":
        click.echo(
            "a linear profile has no memory model; `fastscale calibrate` makes one that does"
        )
