"""`fastscale scale | plan`: scale a model, plan α/s under budgets (profiles: profile_cmds).

Pure numpy underneath (no pandas, torch or ray on the path): `fastscale plan` answers at once.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import click

from planner.candidates import candidate_ops, rank_candidates
from planner.plan import plan_table
from planner.records import scale_record, spec_label
from planner.strategies import get_strategy, strategy_names
from spaces.complexity import complexity
from spaces.io import resolve_spec, save_specs
from spaces.outside import parse_input_shape
from spaces.safe_write import prepare_dir
from spaces.units import format_bytes, format_quantity
from trials.cli.common import QUANTITY, CliError, Finite, echo_json, fail, print_table


def _strategy_help() -> str:
    return (
        f"{', '.join(strategy_names())} (dWr: fast, α = 0.8; rs: ResNet-RS), or pycls weights "
        "like d1_w8_g8_r1 (an omitted letter weighs 0)"
    )


TOLERANCE = Finite(0, 1, max_open=True)
MAX_ALPHAS = 1001  # α steps of 0.001; finer steps give the same rounded networks


def _fq(value, unit="") -> str:
    return format_quantity(value, unit)


def _fb(value) -> str:
    return format_bytes(value)


def _nan_to_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value


FACTOR_NOTE = (
    "the realised flop factor, scaled flops / base flops, after rounding depths, widths "
    "and resolution (and fine-tuning) to valid networks"
)


@click.command("scale")
@click.argument("spec", metavar="SPEC")
@click.option("--strategy", help=f"Scaling strategy: {_strategy_help()}.")
@click.option("--alpha", type=Finite(0, 1), help="Use the α family with this α in [0, 1] instead.")
@click.option(
    "--factor", type=Finite(0, min_open=True), help="Scale by this flop factor s (no solving)."
)
@click.option("--target", type=QUANTITY, help="Solve for this many flops, e.g. 16GF.")
@click.option(
    "--tolerance", type=TOLERANCE, default=0.01, show_default=True, help="Target window ±fraction."
)
@click.option("--no-finetune", is_flag=True, help="Never fine-tune; report the nearest single s.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the scaled spec file.")
def scale_cmd(spec, strategy, alpha, factor, target, tolerance, no_finetune, as_json, out):
    """Scale SPEC (registry name or spec file) by --factor S or to --target FLOPS.

    Example: fastscale scale RegNetY-4.0GF --strategy dWr --target 16GF
    """

    if (strategy is None) == (alpha is None):
        fail("give exactly one of --strategy NAME or --alpha A")
    if (factor is None) == (target is None):
        fail("give exactly one of --factor S or --target FLOPS (e.g. --target 16GF)")
    base = resolve_spec(spec)
    base_flops = complexity(base).flops
    scaled, record = scale_record(
        base,
        spec,
        get_strategy(strategy, alpha),
        factor=factor,
        target=target,
        tolerance=tolerance,
        finetune=not no_finetune,
    )
    if out:
        keep = {k: record[k] for k in ("name", "factor", "flops", "params", "acts")}
        save_specs(out, {**scaled.to_dict(), **keep})
    if as_json:
        echo_json(record)
        return
    _print_scale(record, base_flops, out)


def _print_scale(r: dict, base_flops: int, out) -> None:
    rows = [
        ("strategy", r["strategy"] + ("" if r["alpha"] is None else f" (α = {r['alpha']:.3g})")),
        ("s (flop factor asked)", f"{r['s']:.4g}"),
        ("flops× (realised)", f"{r['factor']:.4g} ({_fq(base_flops, 'F')} -> {_fq(r['flops'], 'F')})"),
        ("depth / width / res", f"{r['depth_factor']:.3f} / {r['width_factor']:.3f} / "
                                f"{r['resolution_factor']:.3f}"),
        ("depths", " ".join(map(str, r["depths"]))),
        ("widths", " ".join(map(str, r["widths"]))),
        ("group widths", " ".join(map(str, r["group_widths"]))),
        ("resolution", str(r["resolution"])),
        ("flops / params / acts", f"{r['flops']:,} / {r['params']:,} / {r['acts']:,}"),
    ]  # fmt: skip
    if "target" in r:
        rows.append(("on target", f"{r['on_target']} (miss {r['miss']:+.2%})"))
        if r["finetuned"]:
            rows.append(("fine-tuned", _finetune_text(r["finetuned"])))
        if not r["on_target"]:
            near = [f"{_fq(r[k], 'F')} {k}" for k in ("below", "above") if r[k] is not None]
            rows.append(("nearest achievable", ", ".join(near) or "-"))
    print_table([{"field": k, "value": v} for k, v in rows], title=r["name"])
    if r.get("scaled_down"):
        click.echo("note: the target is below the base model's flops: scaling down (s < 1)")
    if out:
        click.echo(f"wrote {out}", err=True)


def _finetune_text(ft: dict) -> str:
    """Realised changes (knob in brackets) and how far single-s scaling stayed."""
    knob = {"width": "width_scale", "group_width": "group_scale", "resolution": "resolution_steps"}
    parts = []
    for name, key in knob.items():
        change = ft[f"{name}_change"]
        if change != 1 or key in ft:
            unit = " steps of 4px" if key == "resolution_steps" else ""
            parts.append(f"{name} x{change:.4f} (knob {ft.get(key, 0):g}{unit})")
    if "depth_steps" in ft:
        steps = " ".join(f"{d:+d}" for d in ft["depth_steps"])
        parts.append(f"depth x{ft['depth_change']:.4f} (blocks per stage {steps})")
    return (
        ", ".join(parts) + f" from the s network at {ft['unadjusted_miss']:+.2%}; "
        f"the closest single s misses by {ft['single_s_miss']:+.2%}"
    )


def _parse_alphas(text: str | None):
    """A comma list or start:stop:step of α values in [0, 1], at most MAX_ALPHAS of them."""
    if text is None:
        return None
    text = text.strip()
    shown = text if len(text) <= 40 else text[:37] + "..."
    allowed = "a comma list (0,0.5,0.8) or start:stop:step (0:1:0.05) of α values in [0, 1]"
    try:
        if re.fullmatch(r"[^:]+:[^:]+:[^:]+", text):
            lo, hi, step = (float(x) for x in text.split(":"))
            if not (0 <= lo <= hi <= 1 and step > 0):  # NaN and infinities fail here
                raise ValueError
            n = int(math.floor((hi - lo) / step + 1e-9)) + 1
            if n > MAX_ALPHAS:
                fail(f"--alphas {shown} makes {n:,} values; at most {MAX_ALPHAS} (step >= 0.001)")
            return [round(lo + i * step, 10) for i in range(n)]
        parts = text.split(",")
        if len(parts) > MAX_ALPHAS:
            fail(f"--alphas holds {len(parts):,} values; at most {MAX_ALPHAS}")
        values = [float(x) for x in parts if x.strip()]
        if not values or not all(0 <= v <= 1 for v in values):
            raise ValueError
        return values
    except ValueError as exc:
        if isinstance(exc, CliError):  # already says what is wrong (too many values)
            raise
        fail(f"--alphas {shown!r} must be {allowed}")


BUDGET_FORMS = "; or 1.5x: a multiple of the smallest on-target plan's value"


@click.command("plan")
@click.argument("spec", metavar="SPEC")
@click.option("--target", type=QUANTITY, required=True, help="Target flops, e.g. 16GF.")
@click.option("--max-acts", help="Activation budget, e.g. 32M" + BUDGET_FORMS + ".")
@click.option("--max-params", help="Parameter budget, e.g. 100M" + BUDGET_FORMS + ".")
@click.option(
    "--max-runtime",
    help="Runtime budget in the profile's unit, e.g. 18.5; or 1.5x: no slower than 1.5 × the "
    "fastest on-target plan.",
)
@click.option(
    "--max-memory",
    help="Peak training memory per step at --batch-size, e.g. 12GB, 800MB, 1.5e10; or 1.2x of "
    "the leanest on-target plan (needs a calibrated profile: `fastscale calibrate`).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1 << 20),
    help="Price runtime and memory at this batch (an `ops` profile) [default: the profile's].",
)
@click.option(
    "--resolution",
    "-r",
    type=click.IntRange(8, 4096),
    help="Train the base at this resolution; the plans scale from it [default: the spec's].",
)
@click.option("--profile", help="Runtime profile: shipped name (v100x8-paper) or JSON file.")
@click.option("--alphas", help="α values: 0,0.5,0.8 or 0:1:0.05 (default 0:1:0.05).")
@click.option(
    "--strategies",
    default=None,
    help="Named strategies to add to the α family (comma list; '' for none). Default: "
    "d,w,r,dw,dr,wr,dwr,dWr,effnet, plus rs for ResNets.",
)
@click.option(
    "--epochs",
    type=float,
    help="Training length: under 100 ranks width-leaning plans first, 300+ depth-leaning "
    "(the ResNet-RS finding; guidance, see docs/planner.md).",
)
@click.option(
    "--tolerance", type=TOLERANCE, default=0.01, show_default=True, help="Target window ±fraction."
)
@click.option("--all", "include_all", is_flag=True, help="Show every candidate with its miss.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: the request, the "
    "recommendation, warnings and the ranked plans.",
)  # fmt: skip
@click.option("--out-dir", type=click.Path(file_okay=False), help="Save each plan as a spec file.")
def plan_cmd(
    spec, target, max_acts, max_params, max_runtime, max_memory, batch_size, resolution, profile,
    alphas, strategies, epochs, tolerance, include_all, as_json, out_dir,
):  # fmt: skip
    """Ranked α/s plans that take SPEC to --target within budgets, and the one to take.

    Best first: plans that fit every budget, on target, on the paper's accurate plateau
    (α <= 0.8 compound scaling), most depth/resolution per flop. The last line names the
    plan to take: the fastest within that accuracy-safe range (with --epochs, the ResNet-RS
    schedule rule). See docs/planner.md.

    Example: fastscale plan RegNetY-4.0GF --target 16GF --profile PROFILE --batch-size 64
    --max-runtime 1.5x --max-memory 12GB
    """
    if max_runtime is not None and profile is None:
        fail(
            "--max-runtime needs --profile NAME|FILE, the runtime profile it is measured in "
            "(shipped: --profile v100x8-paper; make one for this machine with `fastscale "
            "calibrate`)"
        )
    if max_memory is not None and profile is None:
        fail(
            "--max-memory needs --profile FILE, a profile with a memory model (kind 'ops'): "
            "make one for this machine with `fastscale calibrate --out PROFILE`"
        )
    base = resolve_spec(spec)
    if out_dir:  # refuse an unusable directory before any work
        prepare_dir(out_dir)
    names = None if strategies is None else [s.strip() for s in strategies.split(",") if s.strip()]
    table = plan_table(
        base, target, alphas=_parse_alphas(alphas), strategies=names, max_acts=max_acts,
        max_params=max_params, max_runtime=max_runtime, profile=profile, tolerance=tolerance,
        include_all=include_all, epochs=epochs, max_memory=max_memory, batch=batch_size,
        resolution=resolution, spec_ref=spec,
    )  # fmt: skip
    records = [_plan_record(r) for r in table.rows]
    for line in table.attrs["warnings"]:
        click.echo(f"fastscale: warning: {line}", err=True)
    if out_dir:
        _save_plans(out_dir, spec_label(spec), target, records)
    if as_json:
        echo_json(_plan_json(table.attrs, records))
        return
    _print_plans(table, records, spec, profile is not None, include_all)
    if out_dir:
        click.echo(f"wrote {len(records)} spec files to {out_dir}", err=True)


def _plan_json(attrs: dict, records: list[dict]) -> dict:
    """`plan --json`: what was asked, where the figures hold, the pick, and the plans."""
    keys = ("target", "base_flops", "base_resolution", "tolerance", "profile", "unit", "batch",
            "lean", "epochs", "scaled_down", "degenerate", "budgets", "budgets_asked",
            "relative", "recommendation", "warnings")  # fmt: skip
    out = {k: attrs.get(k) for k in keys}
    out["figures"] = (
        f"runtime and memory per training step at batch {attrs.get('batch') or '-'}, "
        "each plan at its own resolution"
    )
    return {**out, "plans": records}


def _plan_record(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        v = _nan_to_none(v)
        out[k] = list(v) if isinstance(v, tuple) else v
    for k in ("rank", "flops", "params", "acts", "resolution", "tier"):
        out[k] = int(out[k])
    for k in ("on_target", "fits"):
        out[k] = bool(out[k])
    return out


def _save_plans(out_dir, label, target, records) -> None:
    for r in records:
        strat = re.sub(r"[^A-Za-z0-9_.-]", "", r["strategy"])
        name = f"{label}-{strat}-{_fq(target, 'F')}"
        info = {
            "name": name,
            "factor": r["factor"],
            **{k: r[k] for k in ("flops", "params", "acts")},
        }
        save_specs(Path(out_dir) / f"{r['rank']:02d}-{strat}.json", {**r["spec"], **info})


def _print_plans(table, records, spec, with_runtime: bool, show_fits: bool) -> None:
    attrs = table.attrs
    batch = attrs.get("batch") or "-"
    rows = []
    for r in records:
        row = {
            "#": r["rank"],
            "strategy": r["strategy"],
            "α": r["alpha"],
            "s": f"{r['s']:.4g}",
            "flops×": f"{r['factor']:.4g}",
            "d×": round(r["depth_factor"], 2),
            "w×": round(r["width_factor"], 2),
            "r×": round(r["resolution_factor"], 2),
            "depths": r["depths"],
            "widths": r["widths"],
            "g": sorted(set(r["group_widths"])),
            "res": r["resolution"],
            "flops": _fq(r["flops"], "F"),
            "params": _fq(r["params"]),
            "acts": _fq(r["acts"]),
        }
        if with_runtime:
            row[f"runtime ({attrs['unit']}, batch {batch})"] = r["predicted_runtime"]
            if r["predicted_memory"] is not None:
                row[f"memory/step (batch {batch})"] = _fb(r["predicted_memory"])
        row["miss"] = f"{r['miss']:+.2%}" + ("" if r["on_target"] else " ✗")
        row["tuned"] = "yes" if r["finetuned"] else ""
        if show_fits:
            row["fits"] = "yes" if r["fits"] else "no"
        rows.append(row)
    title = (
        f"{spec} -> {_fq(attrs['target'], 'F')} (base {_fq(attrs['base_flops'], 'F')} at "
        f"{attrs['base_resolution']} px, ±{attrs['tolerance']:.2%})"
    )
    if with_runtime:
        title += f"; runtime and memory per step at batch {batch}, each plan at its res"
    print_table(rows, title=title)
    click.echo(f"s: the flop factor asked of the strategy; flops×: {FACTOR_NOTE}.")
    if attrs.get("scaled_down"):
        dropped = attrs.get("degenerate") or []
        click.echo(
            f"scaling down: the target is below the base's {_fq(attrs['base_flops'], 'F')} "
            "(s < 1)"
            + (
                f"; dropped {', '.join(dropped)}: no scaling reaches it (s pinned at 1e-06)"
                if dropped
                else ""
            )
            + "."
        )
    rec = attrs.get("recommendation")
    if rec is None:
        click.echo("take: none: no on-target plan fits every budget (the fits column).")
    else:
        alpha = "" if rec["alpha"] is None else f" (α = {rec['alpha']:.3g})"
        click.echo(f"take: #{rec['rank']} {rec['label']}{alpha}: {rec['why']}.")


@click.command("candidates")
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--max-acts", type=QUANTITY, help="Activation budget, e.g. 32M.")
@click.option("--max-params", type=QUANTITY, help="Parameter budget, e.g. 100M.")
@click.option(
    "--max-runtime", type=Finite(0, min_open=True), help="Runtime budget in the profile's unit."
)
@click.option(
    "--max-memory", help="Peak training memory per step at the profile's batch, e.g. 12GB."
)
@click.option("--profile", help="Runtime profile: shipped name or JSON file (prices every model).")
@click.option("--resolution", "-r", type=click.IntRange(8, 4096), help="Input resolution.")
@click.option("--input-shape", metavar="C,H,W", help="Input shape of traced models (no batch).")
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="Traced factories' keyword arguments."
)
@click.option("--json", "as_json", is_flag=True, help="Print a ranked JSON list.")
def candidates_cmd(
    models, max_acts, max_params, max_runtime, max_memory, profile, resolution, input_shape,
    kwargs_json, as_json,
):  # fmt: skip
    """Filter and rank MODELs (registry names, spec files, traced PyTorch models: timm:NAME,
    package.module:function, .pt/.pt2) by budgets: the ones that fit first, largest first."""
    kwargs = None
    if kwargs_json:
        from spaces.trace import parse_kwargs

        kwargs = parse_kwargs(kwargs_json)
    shape = parse_input_shape(input_shape) if input_shape else None
    found = candidate_ops(models, resolution, shape, kwargs)
    records = rank_candidates(found, max_acts, max_params, max_runtime, max_memory, profile)
    if as_json:
        echo_json(records)
        return
    rows = [
        {
            "#": r["rank"],
            "model": r["model"],
            "input": r["input"],
            "flops": _fq(r["flops"], "F"),
            "params": _fq(r["params"]),
            "acts": _fq(r["acts"]),
            "runtime": r["runtime"],
            "memory": None if r["memory_bytes"] is None else _fb(r["memory_bytes"]),
            "fits": "yes" if r["fits"] else "no",
            "miss": r["miss"] or None,
        }
        for r in records
    ]
    print_table(rows, title=f"{sum(r['fits'] for r in records)} of {len(records)} fit")
