"""`fastscale models | complexity | sample | export`: the design-space commands (no torch/ray)."""

from __future__ import annotations

import dataclasses

import click

from spaces.complexity import complexity
from spaces.interop import timm_code
from spaces.io import resolve_labeled, resolve_spec, save_specs, spec_record
from spaces.outside import is_outside, parse_input_shape
from spaces.pycls_writer import pycls_yaml
from spaces.registry import EXTERNAL, get_model, list_models, zoo_markdown
from spaces.safe_write import write_file
from spaces.sampler import SPACES, sample
from spaces.space_file import resolve_space
from spaces.specs import FIELD_RANGES
from spaces.units import format_quantity
from trials.cli.common import QUANTITY, SEED, echo_json, fail, print_table
from trials.training.weights_export import export_model

RESOLUTION = click.IntRange(8, FIELD_RANGES["resolution"][2])
NUM_CLASSES = click.IntRange(1, FIELD_RANGES["num_classes"][2])
IN_CHANNELS = click.IntRange(1, FIELD_RANGES["in_channels"][2])


def _row(name: str, spec, cx) -> dict:
    s = spec.stages()
    return {
        "model": name,
        "block": s.block,
        "res": s.resolution,
        "depths": list(s.depths),
        "widths": list(s.widths),
        "flops": format_quantity(cx.flops, "F"),
        "params": format_quantity(cx.params),
        "acts": format_quantity(cx.acts),
    }


@click.command("models")
@click.argument("pattern", required=False, default="*")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--markdown", is_flag=True, help="Print the zoo table as Markdown (docs/zoo.md).")
def models_cmd(pattern, as_json, markdown):
    """List registered models (optionally matching a glob PATTERN, e.g. 'RegNetY*'), with the
    timm / torchvision name of the same architecture. Commands also take `timm:NAME` and
    `torchvision:NAME` (e.g. timm:regnety_040)."""

    names = list_models(pattern)
    if not names:
        fail(f"no registered model matches {pattern!r}; try `fastscale models`")
    if markdown:
        click.echo(zoo_markdown(names), nl=False)
        return
    if as_json:
        echo_json(
            [
                {
                    "name": n,
                    **get_model(n).to_dict(),
                    **complexity(get_model(n)).as_dict(),
                    "external_names": EXTERNAL.get(n, {}),
                }
                for n in names
            ]
        )
        return
    rows = []
    for n in names:
        names_there = {lib: EXTERNAL.get(n, {}).get(lib, "-") for lib in ("timm", "torchvision")}
        rows.append({**_row(n, get_model(n), complexity(get_model(n))), **names_there})
    print_table(rows)


@click.command("complexity")
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--resolution", "-r", type=RESOLUTION, help="Override the input resolution.")
@click.option(
    "--input-shape",
    metavar="C,H,W",
    help="Input shape (no batch) of a traced model; default 3 channels at --resolution or 224.",
)
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments of a traced model's factory."
)
@click.option(
    "--conventions",
    is_flag=True,
    help="Trace the network (torch) and count it as pycls, torch, fvcore, thop and ptflops do.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON objects with integer flops, params, acts."
)
def complexity_cmd(specs, resolution, input_shape, kwargs_json, conventions, as_json):
    """Exact flops, params and activations of registry names or spec files (JSON/YAML), or of
    any PyTorch model traced at an input shape: timm:NAME / torchvision:NAME (installed),
    package.module:function (--kwargs JSON), a TorchScript .pt or torch.export .pt2 file."""

    traced_args = any(is_outside(s) for s in specs) or conventions
    if (input_shape or kwargs_json) and not any(is_outside(s) for s in specs):
        fail("--input-shape and --kwargs go with a traced model (timm:, torchvision:, "
             "package.module:function, .pt/.pt2); registered models take --resolution")  # fmt: skip
    shape = parse_input_shape(input_shape) if input_shape else None
    results, as_list = [], len(specs) > 1
    for ref in specs:
        if is_outside(ref) or conventions:
            results.append(_traced(ref, resolution, shape, kwargs_json))
            continue
        items, many = resolve_labeled([ref])
        as_list |= many
        for label, spec in items:
            spec = spec.with_resolution(resolution) if resolution is not None else spec
            results.append((label, spec, complexity(spec)))
    if as_json:
        objs = [_complexity_json(r, conventions) for r in results]
        echo_json(objs if as_list else objs[0])
        return
    rows = []
    for label, spec, cx in results:
        row = _row(label, spec, cx) if spec is not None else _traced_row(label, cx)
        row.update(flops_exact=cx.flops, params_exact=cx.params, acts_exact=cx.acts)
        rows.append(row)
    print_table(rows)
    for label, _spec, cx in results if traced_args else ():
        if cx.unknown:
            ops = ", ".join(f"{op} x{n}" for op, n in sorted(cx.unknown.items()))
            click.echo(f"{label}: operations with no kind (not counted): {ops}", err=True)
        if conventions:
            print_table(cx.conventions(), title=f"{label}: flop counting conventions")


def _traced(ref, resolution, shape, kwargs_json):
    """(label, None, trace) of an outside model, or (label, spec, trace) of a registered one."""
    from spaces import trace

    if is_outside(ref):
        shape = trace.input_shape_of(shape, resolution)
        return ref, None, trace.trace_model(ref, shape, trace.parse_kwargs(kwargs_json))
    spec = resolve_spec(ref)
    spec = spec.with_resolution(resolution) if resolution is not None else spec
    return ref, spec, trace.trace_spec(spec)


def _traced_row(label, cx) -> dict:
    return {
        "model": label,
        "block": "traced",
        "res": "x".join(map(str, cx.input_shape)),
        "depths": None,
        "widths": None,
        "flops": format_quantity(cx.flops, "F"),
        "params": format_quantity(cx.params),
        "acts": format_quantity(cx.acts),
    }


def _complexity_json(result, conventions: bool) -> dict:
    label, spec, cx = result
    if hasattr(cx, "conventions"):
        from spaces.trace import trace_record

        return {**trace_record(cx, conventions), "name": label}
    return {"name": label, **cx.as_dict(), "resolution": spec.resolution}


@click.command("sample")
@click.option(
    "--space",
    required=True,
    metavar="NAME|FILE",
    help=f"Design space: {', '.join(SPACES)}, or a design-space file (YAML/JSON, e.g. the "
    "refined_space.yaml of `fastscale analyze`; docs/analysis.md).",
)
@click.option("--regime", required=True, type=QUANTITY, help="Target flops, e.g. 400MF, 4GF.")
@click.option(
    "--tolerance",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Regime window ±fraction.",
)
@click.option(
    "-n",
    "n",
    default=32,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Models to draw.",
)
@click.option(
    "--seed", default=0, show_default=True, type=SEED, help="Random seed (fixes the sample)."
)
@click.option("--resolution", "-r", type=RESOLUTION, help="Fixed input resolution (default 224).")
@click.option("--max-params", type=QUANTITY, help="Keep models with at most this many params.")
@click.option("--max-acts", type=QUANTITY, help="Keep models with at most this many activations.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list of spec fields + complexity."
)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write the sample as a spec file (.json/.yaml)."
)
def sample_cmd(space, regime, tolerance, n, seed, resolution, max_params, max_acts, as_json, out):
    """Draw N distinct models whose flops lie in the regime window (seeded, deterministic)."""

    label, ds, _ = resolve_space(space)
    if resolution:
        ds = dataclasses.replace(ds, resolution=resolution)
    drawn = sample(
        ds, regime, n=n, tolerance=tolerance, seed=seed, max_params=max_params, max_acts=max_acts
    )
    records = [
        {**d["spec"].to_dict(), "flops": d["flops"], "params": d["params"], "acts": d["acts"]}
        for d in drawn
    ]
    if out:
        save_specs(out, records)
    if as_json:
        echo_json(records)
        return

    cols = ["depth", "w0", "wa", "wm", "group_width", "resolution"]
    rows = [
        {
            "#": i,
            **{c: r[c] for c in cols},
            "flops": format_quantity(r["flops"], "F", 3),
            "params": format_quantity(r["params"]),
            "acts": format_quantity(r["acts"]),
        }
        for i, r in enumerate(records)
    ]
    print_table(
        rows,
        title=f"{n} {label} models at {format_quantity(regime, 'F')} ±{tolerance:.1%} (seed {seed})",
    )
    if out:
        click.echo(f"wrote {out}", err=True)


@click.command("export")
@click.argument("spec", metavar="SPEC")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pycls", "json", "yaml", "timm", "torchscript", "onnx"]),
    default="pycls",
    show_default=True,
    help="pycls YAML config, a fastscale spec file, the timm call that builds the network, or "
    "the network itself: TorchScript, or ONNX where the onnx package is installed (both need "
    "--out).",
)
@click.option("--resolution", "-r", type=RESOLUTION, help="Override the input resolution.")
@click.option("--num-classes", type=NUM_CLASSES, help="Override the number of classes.")
@click.option("--in-channels", type=IN_CHANNELS, help="Override the input channels (1: gray).")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, exists=True),
    help="torchscript/onnx: weights from a `fastscale train --out DIR` checkpoint.pt.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export_cmd(spec, fmt, resolution, num_classes, in_channels, checkpoint, out, as_json):
    """Export a model as a pycls config (train it with pycls), a spec file, or a network file
    (TorchScript / ONNX, random or --checkpoint weights)."""

    s = resolve_spec(spec)
    if resolution:
        s = s.with_resolution(resolution)
    if num_classes:
        s = s.replace(num_classes=num_classes)
    if in_channels:
        s = s.replace(in_channels=in_channels)
    if fmt in ("torchscript", "onnx"):
        if not out:
            fail(f"--format {fmt} writes a binary file: give --out FILE")

        record = {"spec": spec, **export_model(s, fmt, out, checkpoint)}
    else:
        if checkpoint:
            fail("--checkpoint goes with --format torchscript or onnx (weights, not a config)")
        record = _export_text(s, fmt, out)
        if record is None:
            return
        record = {"spec": spec, **record}
    if as_json:
        echo_json(record)
    else:
        click.echo(f"wrote {out} ({fmt}, {record['bytes']:,} bytes)", err=True)


def _export_text(s, fmt: str, out: str | None) -> dict | None:
    """A config or spec file: printed when there is no --out (returns None), else written."""
    import json

    import yaml

    if fmt == "pycls":
        text = pycls_yaml(s)
    elif fmt == "timm":
        text = timm_code(s)
    elif fmt == "json":
        text = json.dumps(spec_record(s), indent=2) + "\n"
    else:
        text = yaml.safe_dump(spec_record(s), sort_keys=False)
    if not out:
        click.echo(text, nl=False)
        return None

    write_file(out, text)
    return {"format": fmt, "out": out, "bytes": len(text.encode())}
