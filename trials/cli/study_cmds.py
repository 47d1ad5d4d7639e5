"""`fastscale study run|show|submit|status|logs`: search studies on Ray (docs/studies.md)."""

from __future__ import annotations

import click

from spaces.sampler import SPACES
from trials.cli.common import QUANTITY, SEED, Finite, echo_json, print_table
from trials.recipe import MAX_BATCH, MAX_EPOCHS, MAX_RESOLUTION
from trials.study.search import SAMPLERS
from trials.study.store import StudyError

MAX_CANDIDATES = 10_000  # models one study trains (the paper's searches train 32 per regime)

# Exit status of `study run` (docs/studies.md): 0 done (failures may be among the results),
# 1 every candidate failed, 2 bad input (nothing written), 130 interrupted (work kept).
EXIT_ALL_FAILED = 1
EXIT_INTERRUPTED = 130

# The options that define a study (stored in study.json; a resume must agree with them).
DEFINING = [
    click.option(
        "--space",
        type=click.Choice(list(SPACES)),
        default=None,
        help="Design space to search.",
    ),
    click.option(
        "--regime",
        type=QUANTITY,
        default=None,
        help="Target flops of the search, e.g. 20MF, 400MF, 4GF.",
    ),
    click.option(
        "-n",
        "n",
        type=click.IntRange(1, MAX_CANDIDATES),
        default=None,
        help="Number of candidates to train (default 32, the paper's).",
    ),
    click.option(
        "--tolerance",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=None,
        help="Regime window half-width, a fraction (default 0.01).",
    ),
    click.option(
        "--sampler",
        type=click.Choice(SAMPLERS),
        default=None,
        help="random: the regime sampler's N models (default); tpe/nsga2: Optuna.",
    ),
    click.option(
        "--storage", default=None, help="Optuna RDB URL (default sqlite:///DIR/optuna.db)."
    ),
    click.option(
        "--specs",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Train the specs of this JSON/YAML file instead of searching.",
    ),
    click.option("--seed", type=SEED, default=None, help="Seed of sampling and training (0)."),
    click.option(
        "--dataset",
        default=None,
        help="fashion-mnist (default) or an ImageFolder path (train/ and val/).",
    ),
    click.option(
        "--resolution",
        type=click.IntRange(8, MAX_RESOLUTION),
        default=None,
        help="Training resolution (search default 32; --specs: each spec's own).",
    ),
    click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=None, help="Epochs (1)."),
    click.option(
        "--train-size",
        type=click.IntRange(min=2),
        default=None,
        help="Seeded stratified subset of the training set.",
    ),
    click.option(
        "--val-size",
        type=click.IntRange(min=1),
        default=None,
        help="Seeded stratified subset of the validation set.",
    ),
    click.option(
        "--batch-size", type=click.IntRange(2, MAX_BATCH), default=None, help="Batch (128)."
    ),
    click.option(
        "--base-lr",
        type=Finite(min=0, min_open=True),
        default=None,
        help="Learning rate at batch 1024 (2.0), scaled linearly.",
    ),
]
# Options of one run of a study (not stored; they may change between resumes).
RUNNING = [
    click.option(
        "--max-failures",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Failed attempts allowed per candidate before it is recorded failed.",
    ),
    click.option(
        "--cpus-per-trial",
        type=Finite(min=0, min_open=True),
        default=1,
        show_default=True,
        help="CPUs per trial (also its torch threads).",
    ),
    click.option(
        "--gpus-per-trial",
        type=Finite(min=0),
        default=0,
        show_default=True,
        help="GPUs per trial; fractions share a GPU.",
    ),
    click.option(
        "--time-batch",
        type=click.IntRange(min=1),
        default=None,
        help="Also time inference at this batch size (infer_time, s/image).",
    ),
    click.option(
        "--checkpoint-storage",
        default=None,
        help="Where trials' checkpoints go (Ray Tune's storage_path): a directory every node "
        "can reach, or a URI such as s3://bucket/prefix. Default: DIR/ray.",
    ),
    click.option(
        "--keep-weights",
        is_flag=True,
        default=False,
        help="Keep each finished candidate's final weights (weights.pt) in the checkpoint "
        "storage; by default a finished candidate keeps only its record.",
    ),
]
DEFINING_NAMES = (
    "space",
    "regime",
    "n",
    "tolerance",
    "sampler",
    "storage",
    "specs",
    "seed",
    "dataset",
    "resolution",
    "epochs",
    "train_size",
    "val_size",
    "batch_size",
    "base_lr",
)
RUNNING_NAMES = (
    "max_failures",
    "cpus_per_trial",
    "gpus_per_trial",
    "time_batch",
    "checkpoint_storage",
    "keep_weights",
)
SHOW_COLUMNS = (
    "key",
    "status",
    "error",
    "flops",
    "params",
    "acts",
    "epoch_time",
    "infer_time",
    "attempts",
    "node",
)
NOT_SHOWN = {
    "family",
    "bottleneck",
    "stem_width",
    "head_width",
    "se_ratio",
    "in_channels",
    "num_classes",
    "hostname",
    "failures",
    "epochs_done",
    "epochs",
    "seed",
    "failure",
    "method",
    "space",
    "regime",
    "sampler",
}


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


# A comparison's study (trials.compare) tags every candidate with these: its table shows them
# and one compact spec column instead of ~15 spec-field and hash columns.
COMPARE_TAGS = ("method", "level", "regime", "strategy", "phase", "seed")


def show_rows(df) -> tuple[list[dict], list[str]]:
    """Records (NaN as None) and the table's columns: results, spec fields, tags, failure."""
    import pandas as pd

    records = df.astype(object).where(pd.notna(df), None).to_dict("records")
    if "method" in df.columns and "phase" in df.columns:
        return _compact_rows(records, df)
    cols = [c for c in SHOW_COLUMNS if c in df.columns]
    cols += [c for c in df.columns if c not in cols and c not in NOT_SHOWN]
    if df["failure"].notna().any():
        cols.append("failure")
    for r in records:
        if r.get("node"):
            r["node"] = str(r["node"])[:8]
    return records, cols


def no_space(exc: BaseException) -> str | None:
    """' (PATH)' (or '') when a full disk caused `exc` (also wrapped by Ray), else None."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f" ({exc.filename})" if exc.filename else ""
        if "No space left on device" in str(exc):
            return ""
        exc = exc.__cause__ or exc.__context__
    return None


def kept(out) -> str:
    """What an interrupted run leaves, and how to go on."""
    from trials.study.results import load_results

    try:
        df = load_results(out)
    except Exception:
        return "nothing was recorded yet"
    done = int((df["status"] == "done").sum()) if len(df) else 0
    return (
        f"{done} of {len(df)} candidates done are kept in {out}; interrupted ones resume from "
        f"their last checkpoint with `fastscale study run --out {out}`"
    )


def _compact_rows(records: list[dict], df) -> tuple[list[dict], list[str]]:
    """A comparison directory: key, status, error %, complexity in units, epoch time, the
    comparison's tags and the network in one short column."""
    from spaces.units import format_quantity
    from trials.study.progress import one_line, short_name

    rows = []
    for r in records:
        row = {k: r.get(k) for k in ("key", "status")}
        row["error %"] = None if r.get("error") is None else round(100 * float(r["error"]), 2)
        for k in ("flops", "params", "acts"):
            row[k] = None if r.get(k) is None else format_quantity(r[k])
        row["epoch s"] = None if r.get("epoch_time") is None else round(r["epoch_time"], 1)
        row.update({k: r.get(k) for k in COMPARE_TAGS if k in df.columns})
        row["network"] = short_name(r) if r.get("block") or r.get("family") else None
        if r.get("failure"):
            row["failure"] = one_line(r["failure"], 60)
        rows.append(row)
    cols = list(rows[0]) if rows else []
    if any("failure" in r for r in rows) and "failure" not in cols:
        cols.append("failure")
    return rows, cols


def summary(df) -> str:
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "pending")]
    return f"{len(df)} candidates: " + ", ".join(parts)


def register(group: click.Group) -> None:
    @group.group("study")
    def study():
        """Search studies on Ray Tune: run, resume, inspect, submit to a cluster."""

    @study.command("run")
    @_apply(DEFINING)
    @_apply(RUNNING)
    @click.option(
        "--address",
        default=None,
        help="Attach to a running Ray cluster (HOST:PORT, ray://..., auto); "
        "default: an embedded local Ray.",
    )
    @click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(file_okay=False),
        help="Study directory: created, or resumed when it holds a study.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
    def run_cmd(out, address, as_json, **kw):
        """Train a study's candidates, one Ray Tune trial each; rerun to resume.

        \b
        fastscale study run --space regnetx --regime 20MF -n 8 --dataset fashion-mnist \\
            --resolution 32 --epochs 2 --out runs/x20mf
        fastscale study run --out runs/x20mf        # resume after a crash or Ctrl-C
        """
        from trials.study.define import run_defined
        from trials.study.results import load_results

        opts = {k: kw[k] for k in DEFINING_NAMES}
        try:
            run_defined(
                out,
                opts,
                address=address,
                progress=not as_json,
                **{k: kw[k] for k in RUNNING_NAMES},
            )
        except KeyboardInterrupt:
            click.echo(f"fastscale: interrupted; {kept(out)}", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            where = no_space(exc)
            if where is None:
                raise
            raise StudyError(
                f"no space left on device{where}; {kept(out)} once space is freed"
            ) from None
        df = load_results(out)
        _print(df, as_json, out)
        if len(df) and (df["status"] == "failed").all():
            first = df["failure"].dropna()
            why = f"; first failure: {first.iloc[0]}" if len(first) else ""
            click.echo(
                f"fastscale: error: every candidate failed ({len(df)} of {len(df)}){why}; "
                f"see `fastscale study show {out}`",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_ALL_FAILED)

    @study.command("show")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--json", "as_json", is_flag=True, help="One JSON record per candidate.")
    def show_cmd(directory, as_json):
        """One row per candidate: status, error, flops, params, acts, times, spec fields."""
        from trials.study.results import load_results

        _print(load_results(directory), as_json, directory)

    @study.command("repair")
    @click.argument("directory", type=click.Path(file_okay=False))
    @_apply(DEFINING)
    @click.option(
        "--checkpoint-storage",
        default=None,
        help="Where the study's trials put their checkpoints, if not DIR/ray.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
    def repair_cmd(directory, checkpoint_storage, as_json, **kw):
        """Rebuild a damaged study: study.json from the restated options, statuses from the
        checkpoint storage, results.parquet; damaged candidates go to DIR/quarantine/.
        Nothing is deleted."""
        from trials.study.repair import repair, summary

        opts = {k: kw[k] for k in DEFINING_NAMES}
        done = repair(directory, opts, checkpoint_storage)
        if as_json:
            echo_json(done)
        else:
            for line in summary(done):
                click.echo(line)

    @study.command("submit")
    @_apply(DEFINING)
    @_apply(RUNNING)
    @click.option(
        "--address", required=True, help="Ray dashboard URL of the cluster, e.g. http://HEAD:8265."
    )
    @click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(file_okay=False),
        help="Study directory as seen by the cluster head (made absolute).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print {job_id, entrypoint} as JSON.")
    def submit_cmd(out, address, as_json, **kw):
        """Submit `fastscale study run ...` to a cluster through Ray Jobs."""
        import os

        from trials.study import jobs

        options = {k: kw[k] for k in DEFINING_NAMES + RUNNING_NAMES}
        if options.get("specs"):
            options["specs"] = os.path.abspath(options["specs"])
        storage = options.get("checkpoint_storage")
        if storage and "://" not in storage:
            options["checkpoint_storage"] = os.path.abspath(storage)
        options["out"] = os.path.abspath(out)
        job_id = jobs.submit(address, options, options["out"])
        if as_json:
            echo_json({"job_id": job_id, "entrypoint": jobs.entrypoint(options)})
            return
        click.echo(f"submitted {job_id}: {jobs.entrypoint(options)}")
        click.echo(f"follow: fastscale study logs {job_id} --address {address} --follow")

    @study.command("status")
    @click.argument("job_id")
    @click.option("--address", required=True, help="Ray dashboard URL, e.g. http://HEAD:8265.")
    @click.option("--json", "as_json", is_flag=True)
    def status_cmd(job_id, address, as_json):
        """State of a submitted study job (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
        from trials.study import jobs

        info = jobs.status(address, job_id)
        if as_json:
            echo_json(info)
        else:
            for k, v in info.items():
                click.echo(f"{k:11} {v}")

    @study.command("logs")
    @click.argument("job_id")
    @click.option("--address", required=True, help="Ray dashboard URL, e.g. http://HEAD:8265.")
    @click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
    def logs_cmd(job_id, address, follow):
        """The driver output of a submitted study job."""
        from trials.study import jobs

        jobs.logs(address, job_id, follow=follow, echo=lambda s, end="": click.echo(s, nl=False))


def _print(df, as_json: bool, directory) -> None:
    records, cols = show_rows(df)
    if as_json:
        echo_json(records)
    else:
        print_table(records, cols, title=f"{directory}: {summary(df)}; {disk_use(directory)}")


def disk_use(directory) -> str:
    """The study's size on disk (and its checkpoints kept in another storage)."""
    from trials.study.results import study_size
    from trials.study.store import StudyStore

    inside, outside = study_size(StudyStore(directory))
    text = f"{human_bytes(inside)} on disk"
    return text + (f" + {human_bytes(outside)} of checkpoints elsewhere" if outside else "")


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
