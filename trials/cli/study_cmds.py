"""`fastscale study run|show|repair|submit|status|logs`: search studies on Ray
(docs/studies.md). Options live in trials.cli.study_options, printing in study_show."""

from __future__ import annotations

import click

from spaces.space_file import is_space_name
from trials.cli.common import echo_json
from trials.cli.study_options import (
    DEFINING,
    DEFINING_NAMES,
    RUNNING,
    RUNNING_NAMES,
    apply,
)
from trials.cli.study_show import kept, no_space, print_results
from trials.study import jobs
from trials.study.define import run_defined
from trials.study.repair import repair, summary
from trials.study.results import load_results
from trials.study.store import StudyError

# Exit status of `study run` (docs/studies.md): 0 done (failures may be among the results),
# 1 every candidate failed, 2 bad input (nothing written), 130 interrupted (work kept).
EXIT_ALL_FAILED = 1
EXIT_INTERRUPTED = 130
DASHBOARD = "Ray dashboard URL of the cluster, e.g. http://HEAD:8265."


@click.group("study")
def study_group():
    """Search studies on Ray Tune: run, resume, inspect, submit to a cluster."""


@click.command("run")
@apply(DEFINING)
@apply(RUNNING)
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

    opts = {k: kw[k] for k in DEFINING_NAMES}
    try:
        run_defined(
            out, opts, address=address, progress=not as_json, **{k: kw[k] for k in RUNNING_NAMES}
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
    print_results(df, as_json, out)
    if len(df) and (df["status"] == "failed").all():
        first = df["failure"].dropna()
        why = f"; first failure: {first.iloc[0]}" if len(first) else ""
        click.echo(
            f"fastscale: error: every candidate failed ({len(df)} of {len(df)}){why}; "
            f"see `fastscale study show {out}`",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_ALL_FAILED)


@click.command("show")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON record per candidate.")
def show_cmd(directory, as_json):
    """One row per candidate: status, error, flops, params, acts, times, spec fields."""

    print_results(load_results(directory), as_json, directory)


@click.command("repair")
@click.argument("directory", type=click.Path(file_okay=False))
@apply(DEFINING)
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

    opts = {k: kw[k] for k in DEFINING_NAMES}
    done = repair(directory, opts, checkpoint_storage)
    if as_json:
        echo_json(done)
    else:
        for line in summary(done):
            click.echo(line)


@click.command("submit")
@apply(DEFINING)
@apply(RUNNING)
@click.option("--address", required=True, help=DASHBOARD)
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

    options = {k: kw[k] for k in DEFINING_NAMES + RUNNING_NAMES}
    if options.get("specs"):
        options["specs"] = os.path.abspath(options["specs"])
    if options.get("space") and not is_space_name(options["space"]):  # a design-space file
        options["space"] = os.path.abspath(options["space"])
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


@click.command("status")
@click.argument("job_id")
@click.option("--address", required=True, help=DASHBOARD)
@click.option("--json", "as_json", is_flag=True)
def status_cmd(job_id, address, as_json):
    """State of a submitted study job (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""

    info = jobs.status(address, job_id)
    if as_json:
        echo_json(info)
    else:
        for k, v in info.items():
            click.echo(f"{k:11} {v}")


@click.command("logs")
@click.argument("job_id")
@click.option("--address", required=True, help=DASHBOARD)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs_cmd(job_id, address, follow):
    """The driver output of a submitted study job."""

    jobs.logs(address, job_id, follow=follow, echo=lambda s, end="": click.echo(s, nl=False))


for _command in (run_cmd, show_cmd, repair_cmd, submit_cmd, status_cmd, logs_cmd):
    study_group.add_command(_command)
