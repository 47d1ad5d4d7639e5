"""`fastscale train | time | calibrate`: one training run, careful timing, runtime profiles."""

from __future__ import annotations

import click

from spaces.io import resolve_labeled, resolve_spec
from spaces.outside import is_outside, parse_input_shape
from trials.cli.common import SEED, Finite, command_line, echo_json, fail, print_table
from trials.progress import Progress
from trials.timing.load import load_line
from trials.timing.protocol import DEFAULT, TimingProtocol
from trials.training.parallel import MAX_DATA_WORKERS, ParallelConfig
from trials.training.recipe import (
    CLOCKS,
    DEVICES,
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_RESOLUTION,
    MAX_THREADS,
    MAX_WORKERS,
    MODES,
    TrainConfig,
)

DEVICE = click.Choice(DEVICES)
MODE = click.Choice(MODES)
CLOCK = click.Choice(CLOCKS)
# `time` and `calibrate` measure with the same clocks, so they offer one option
clock_option = click.option(
    "--clock",
    type=CLOCK,
    default="wall",
    show_default=True,
    help="cpu: count this process' CPU seconds (CPU only; robust to other load).",
)
RESOLUTION = click.IntRange(8, MAX_RESOLUTION)
THREADS = click.IntRange(1, MAX_THREADS)
BATCH = click.IntRange(1, MAX_BATCH)
COUNT = click.IntRange(1, 10_000)


def protocol_options(fn):
    """`time` and `calibrate` measure under one protocol (trials.timing.protocol), so they
    offer the same options with the same defaults."""
    options = [
        click.option(
            "--steps", "--repeats", "steps", type=COUNT, default=DEFAULT.steps,
            show_default=True, help="Timed steps per round (their median is the round's value).",
        ),
        click.option(
            "--rounds", type=click.IntRange(1, 1000), default=DEFAULT.rounds, show_default=True,
            help="Interleaved rounds over all models; a model's time is its fastest round "
            "(other work on the machine only ever adds time).",
        ),
        click.option(
            "--warmup", type=click.IntRange(0, 10_000), default=DEFAULT.min_warmup,
            show_default=True, help="Untimed steps always run before the steady check.",
        ),
        click.option(
            "--max-warmup", type=click.IntRange(0, 10_000), default=DEFAULT.max_warmup,
            show_default=True,
            help=f"Warm up until {DEFAULT.window} steps in a row agree within "
            f"{DEFAULT.tolerance:.0%}, at most this many steps.",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def protocol_from(options: dict):
    """The TimingProtocol the protocol options ask for (removed from `options`)."""
    warmup = options.pop("warmup")
    return TimingProtocol(
        steps=options.pop("steps"),
        rounds=options.pop("rounds"),
        min_warmup=warmup,
        max_warmup=max(warmup, options.pop("max_warmup")),
    )


def _progress(line: str) -> None:
    """One plain line on stderr per unit of long work (quiet, line-oriented, greppable)."""
    click.echo(line, err=True)


@click.command("train")
@click.argument("spec", metavar="SPEC")
@click.option(
    "--dataset",
    default="fashion-mnist",
    show_default=True,
    help="'fashion-mnist' or the path of an ImageFolder tree (train/<class>/, val/<class>/).",
)
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=1, show_default=True)
@click.option("--resolution", "-r", type=RESOLUTION, help="Input resolution [default: the spec's].")
@click.option("--batch-size", type=click.IntRange(2, MAX_BATCH), default=128, show_default=True)
@click.option("--train-size", type=click.IntRange(min=2), help="Seeded stratified train subset.")
@click.option("--val-size", type=click.IntRange(min=1), help="Seeded stratified val subset.")
@click.option(
    "--base-lr", type=Finite(0, min_open=True), default=2.0, show_default=True,
    help="LR at batch 1024.",
)  # fmt: skip
@click.option("--warmup-epochs", type=Finite(0), help="[default: 5% of the epochs, at most 5].")
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--threads", type=THREADS, help="CPU threads [default: all].")
@click.option("--num-workers", type=click.IntRange(0, MAX_WORKERS), default=0, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--workers", type=click.IntRange(1, MAX_DATA_WORKERS), default=1, show_default=True,
    help="Data-parallel processes, one device each; --batch-size stays the global batch.",
)  # fmt: skip
@click.option("--sync-bn", is_flag=True, help="BatchNorm statistics over the global batch.")
@click.option(
    "--cpus-per-worker", type=Finite(0, min_open=True), default=1.0, show_default=True,
    help="CPUs reserved for each data-parallel worker.",
)  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False), help="Checkpoint/result directory.")
@click.option("--json", "as_json", is_flag=True, help="Print {epochs: [...], error: ...}.")
def train_cmd(spec, out, as_json, workers, sync_bn, cpus_per_worker, **options):
    """Train SPEC (registry name or spec file) under the fixed recipe and report every epoch.

    The classifier's classes and the stem's input channels follow the dataset. With --out,
    a checkpoint is written after every epoch and an interrupted run resumes from it.
    The result `error` is the best validation top-1 error (fraction) of the averaged weights.
    With --workers N the run is data-parallel (gloo on CPU, NCCL on CUDA; docs/training.md).
    """
    from trials.training.train import train

    config = TrainConfig(**options)
    parallel = ParallelConfig(workers=workers, sync_bn=sync_bn, cpus_per_worker=cpus_per_worker)
    model = resolve_spec(spec)
    bar = Progress("img")
    bar.epoch = None

    def on_step(epoch, done, total):
        if done < 0:
            bar.note(f"epoch {epoch + 1}/{config.epochs}  {total} img trained; evaluating")
            return
        if bar.epoch != epoch:  # the rate counts this epoch's steps only
            bar.epoch = epoch
            bar.restart(done)
        bar.update(done, total, f"epoch {epoch + 1}/{config.epochs}")

    done = [0]  # epochs in the checkpoint so far

    def on_resume(epochs_done):
        done[0] = epochs_done
        left = max(0, config.epochs - epochs_done)
        _progress(
            f"resuming from the checkpoint in {out}: {epochs_done} of {config.epochs} epochs "
            f"done, continuing at epoch {epochs_done + 1}" if left else
            f"the checkpoint in {out} already holds all {config.epochs} epochs; nothing to train"
        )  # fmt: skip

    def on_epoch(r):
        done[0] = max(done[0], int(r["epoch"]))
        bar.clear()
        _progress(
            f"epoch {r['epoch']}/{config.epochs}  loss {r['train_loss']:.4f}  "
            f"error {r['error']:.4f}  {r['epoch_time']:.1f}s  {r['images_per_s']:.0f} img/s"
        )

    try:
        result = train(
            model,
            config,
            out_dir=out,
            on_epoch=on_epoch,
            on_step=on_step,
            on_resume=on_resume,
            parallel=parallel,
        )
    except KeyboardInterrupt:
        bar.clear()
        click.echo(f"fastscale: interrupted; {_kept(out, done[0], config.epochs)}", err=True)
        raise click.exceptions.Exit(130) from None
    bar.clear()
    if as_json:
        echo_json({"spec": spec, **result})
        return
    cols = ["epoch", "train_loss", "error", "error_raw", "epoch_time", "images_per_s", "peak_mem"]
    rows = [{**r, "peak_mem": f"{r['peak_mem'] / 2**20:.0f} MiB"} for r in result["epochs"]]
    print_table(rows, cols, title=f"{spec} on {config.dataset}")
    click.echo(
        f"error {result['error']:.4f} (best averaged-weights top-1, epoch {result['best_epoch']}); "
        f"median epoch {result['epoch_time']:.2f}s"
    )


def _kept(out, epochs_done: int, epochs: int) -> str:
    """What an interrupted `train` left, and the exact command that continues it."""
    if out is None:
        return "nothing was kept (no --out); rerun with --out DIR to checkpoint every epoch"
    command = command_line(click.get_current_context())
    if epochs_done == 0:
        return f"no epoch was finished, {out} holds no checkpoint; rerun with: {command}"
    return (
        f"the checkpoint of epoch {epochs_done} of {epochs} is kept in {out}; resume with: "
        f"{command}"
    )


# outside models (docs/models.md "Any PyTorch model"), as `profile predict` takes them
input_shape_option = click.option(
    "--input-shape", metavar="C,H,W", help="Input shape of a traced model (no batch)."
)
kwargs_option = click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="A traced factory's keyword arguments."
)


def _timed_items(refs, resolution, input_shape, kwargs_json) -> tuple[list, bool]:
    """(label, spec or OutsideModel) of each reference at `resolution`, and whether to print
    a list. Outside models are traced first, so a bad one fails before any timing."""
    items, as_list = [], len(refs) > 1
    shape = parse_input_shape(input_shape) if input_shape else None
    for ref in refs:
        if is_outside(ref):
            from trials.timing.outside import outside_models

            model = outside_models([ref], shape, resolution, kwargs_json)[0]
            items.append((ref, model))
            continue
        labeled, many = resolve_labeled([ref])
        as_list |= many
        items += [
            (label, spec if resolution is None else spec.with_resolution(resolution))
            for label, spec in labeled
        ]
    return items, as_list


@click.command("time")
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--batch-size", type=BATCH, default=32, show_default=True)
@click.option("--mode", type=MODE, default="train", show_default=True)
@click.option("--resolution", "-r", type=RESOLUTION, help="Input resolution [default: the spec's].")
@input_shape_option
@kwargs_option
@protocol_options
@click.option("--threads", type=THREADS, help="CPU threads [default: all].")
@clock_option
@click.option(
    "--memory",
    is_flag=True,
    help="Also measure each SPEC's peak training-step memory (first round; train mode).",
)
@click.option("--json", "as_json", is_flag=True, help="One object per spec (a list if several).")
def time_cmd(specs, as_json, resolution, input_shape, kwargs_json, memory, **options):
    """Seconds per training step (or inference batch) of each SPEC under the timing protocol
    (docs/planner.md, "Timing protocol"): interleaved rounds over the SPECs, each a warm-up
    until steady and the median of --steps steps; a SPEC's time is its fastest round.
    A SPEC may be a PyTorch model fastscale did not define (timm:/torchvision: name,
    package.module:function, .pt/.pt2 file; docs/models.md "Any PyTorch model"): its loss is
    cross-entropy on (N, K) outputs, else the output's mean.
    Says whether the machine was busy while measuring. --memory adds the peak bytes of one
    training step (docs/planner.md, "The operation model": what `profile predict` prices)."""
    from trials.timing.step_time import time_models

    if memory and options["mode"] != "train":
        fail("--memory measures a training step's peak; it needs --mode train")
    protocol = protocol_from(options)
    items, as_list = _timed_items(specs, resolution, input_shape, kwargs_json)
    bar = Progress("steps")
    labels = [label for label, _ in items]

    def on_step(i, done, total):
        bar.update(done, total, f"timing {labels[i]}")

    def progress(i, rnd, r):
        bar.clear()
        if len(items) > 1 or protocol.rounds > 1:
            where = f" round {rnd + 1}/{protocol.rounds}" if protocol.rounds > 1 else ""
            _progress(f"timed {labels[i]}{where}: {r['seconds_per_batch'] * 1e3:.1f} ms/batch")
        bar.restart()

    timed, load = time_models(
        [spec for _, spec in items], protocol, memory=memory, progress=progress,
        on_step=on_step, **options,
    )  # fmt: skip
    bar.clear()
    results = [{"name": label, **r, "load": load} for label, r in zip(labels, timed, strict=True)]
    if as_json:
        echo_json(results if as_list else results[0])
        return
    print_table(
        [
            {
                "model": r["name"],
                "res": r["resolution"],
                "flops": r["flops"],
                "params": r["params"],
                "acts": r["acts"],
                "ms/batch": r["seconds_per_batch"] * 1e3,
                "ms/image": r["seconds_per_image"] * 1e3,
                "spread": r["spread"],
                **({"peak MiB": r["memory_bytes"] / 2**20} if memory else {}),
            }
            for r in results
        ],
        title=f"{options['mode']} step, batch {options['batch_size']}, {options['device']}",
    )
    click.echo(load_line(load))


@click.command("calibrate")
@click.argument("spec", metavar="[SPEC]", required=False)
@click.option("--strategies", default="w,dwr,dWr", show_default=True, help="Scale SPEC with these.")
@click.option("--factors", default="1,2,4,8", show_default=True, help="Flop factors s for SPEC.")
@click.option(
    "--spec-only",
    is_flag=True,
    help="Time only SPEC and its scaled copies, not the diverse set (a narrower profile).",
)
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option(
    "--resolution",
    "-r",
    type=RESOLUTION,
    help="Top resolution of the diverse set (it also times 1/2 and 3/4 of it) and SPEC's "
    "resolution [default: 64; SPEC's own].",
)
@click.option("--batch-size", type=BATCH, default=16, show_default=True)
@click.option("--mode", type=MODE, default="train", show_default=True)
@protocol_options
@click.option("--threads", type=THREADS, help="CPU threads [default: all].")
@clock_option
@click.option(
    "--epoch-images",
    type=click.IntRange(min=1),
    help="Express time as minutes per epoch of this many images [default: seconds/image].",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the diverse set.")
@click.option(
    "--add",
    "add",
    multiple=True,
    metavar="MODEL",
    help="Also time this traced PyTorch model (repeatable; docs/models.md), for operation "
    "kinds fastscale's own networks lack (LayerNorm, GELU, ...).",
)
@click.option(
    "--input-shape",
    metavar="C,H,W",
    help="Input shape of the --add models (no batch) [default: 3 channels at each resolution "
    "of the set].",
)
@kwargs_option
@click.option("--name", help="Profile name [default: DEVICE-MODE-bBATCH].")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Profile JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows and fit as JSON.")
def calibrate_cmd(
    spec, strategies, factors, spec_only, resolution, out, as_json, add, input_shape,
    kwargs_json, **options,
):  # fmt: skip
    """Time a diverse set of networks (random RegNet X/Y/Z at several resolutions,
    EfficientNets, scaled models) and, with SPEC, SPEC scaled by each strategy and factor;
    fit an `ops` profile: per-operation costs of a training step and its peak memory.

    --add MODEL (a traced PyTorch model, as `fastscale time` takes it) is timed too, with
    --kwargs and at --input-shape (else at each resolution of the set): its operation
    counts join the fit, so the profile prices the kinds it brings.

    Prints the fit and a held-out check (each model predicted by a fit on all the others)
    beside the linear acts + flops fit; the saved file is what `fastscale plan --profile`
    and `fastscale profile predict` read. See docs/planner.md.
    """
    from trials.timing.calibrate import calibrate, parse_factors, parse_strategies

    if (input_shape or kwargs_json) and not add:
        fail("--input-shape and --kwargs apply to --add models; give --add MODEL")
    add_kwargs = None
    if kwargs_json:
        from spaces.trace import parse_kwargs

        add_kwargs = parse_kwargs(kwargs_json)

    if spec_only and spec is None:
        fail("--spec-only needs a SPEC to scale")
    base = None
    if spec is not None:
        base = resolve_spec(spec)
        if resolution is not None:
            base = base.with_resolution(resolution)
    result = calibrate(
        base,
        strategies=parse_strategies(strategies),
        factors=parse_factors(factors),
        diverse=not spec_only,
        resolution=resolution,
        out=out,
        progress=_progress,
        protocol=protocol_from(options),
        add=add,
        add_shape=parse_input_shape(input_shape) if input_shape else None,
        add_kwargs=add_kwargs,
        **options,
    )
    if as_json:
        echo_json(result.to_dict())
        return
    print_table(result.table(), title=f"{options['mode']} step, batch {options['batch_size']}")
    for line in result.summary_lines():
        click.echo(line)
