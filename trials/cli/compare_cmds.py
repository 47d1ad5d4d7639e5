"""`fastscale compare` and `fastscale report`: scaling vs search vs hybrid (docs/compare.md)."""

from __future__ import annotations

import click

from planner.profiles import load_profile
from spaces.safe_write import plain_name
from trials.cli.common import echo_json, fail, print_table
from trials.compare.preset import early_stop_from_flags, list_presets, load_preset
from trials.compare.run import rebuild_report, run_compare, study_epoch_time_check
from trials.study.early_stop import MAX_REDUCTION, SCHEDULERS


def _preset_help() -> str:
    return f"A preset name ({', '.join(list_presets())}) or a preset YAML file."


@click.command("compare")
@click.option("--preset", "preset_ref", required=True, help=_preset_help())
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Study directory (default runs/compare-PRESET); re-running resumes it.",
)
@click.option("--address", default=None, help="Ray cluster address (default: a local Ray).")
@click.option(
    "-n", "n", type=click.IntRange(1, 1000), default=None, help="Models searched per regime."
)
@click.option(
    "--dataset", default=None, help="fashion-mnist or an ImageFolder path (overrides the preset)."
)
@click.option(
    "--profile",
    help="Runtime profile (NAME or FILE): also report predicted vs measured epoch times.",
)
@click.option(
    "--scheduler",
    type=click.Choice(SCHEDULERS),
    default=None,
    help="fifo: train every candidate fully, as the paper's search does (default, or the "
    "preset's early_stop); asha: Ray Tune's ASHA stops trailing candidates early.",
)
@click.option(
    "--grace-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="asha: epochs before a candidate is first judged (1).",
)
@click.option(
    "--reduction-factor",
    type=click.IntRange(2, MAX_REDUCTION),
    default=None,
    help="asha: keep the best 1/N at each rung (3).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def compare_cmd(preset_ref, out_dir, address, n, dataset, profile, as_json, **early):
    """Search vs scaling vs hybrid at the preset's regimes as one resumable study; writes
    DIR/report.html (tables, figures, verdict)."""

    preset = load_preset(preset_ref)
    stop = early_stop_from_flags(preset, **early)
    if profile is not None:
        load_profile(profile)  # an unknown profile fails now, not after the training
    if not (dataset or preset.dataset):
        fail(f"preset {preset.name!r} needs a dataset: pass --dataset PATH (an ImageFolder tree)")
    if out_dir is None:
        out_dir = f"runs/compare-{plain_name(preset.name, 'preset name')}"
    outcome = run_compare(
        preset,
        out_dir,
        address=address,
        n=n,
        dataset=dataset,
        progress=not as_json,
        early_stop=stop,
    )
    if profile is not None:
        outcome["epoch_time_check"] = study_epoch_time_check(out_dir, profile)
        rebuild_report(out_dir, outcome["epoch_time_check"])  # the report shows it too
    if as_json:
        echo_json(outcome)
        return
    _show(outcome["verdict"])
    for line in outcome["sentences"]:
        click.echo(line)
    click.echo(f"{outcome['trials']} trials, {outcome['wall_s'] / 60:.1f} min this run")
    if profile is not None:
        _show_check(outcome["epoch_time_check"])
    click.echo(f"open {outcome['report']}")


def _show_check(check: dict) -> None:
    rows = [
        {"model": r["model"], "method": r["method"], "strategy": r["strategy"] or "-",
         "regime": r["regime"], "px": r.get("resolution"), "measured s": r["measured_s"],
         "predicted s": r["predicted_s"],
         "error": f"{r['error']:+.1%}"}
        for r in check["rows"]
    ]  # fmt: skip
    if rows:
        print_table(rows, title=f"epoch time: measured vs predicted by {check['profile']}")
    s = check["summary"]
    if s["n"]:
        r = "-" if s["pearson_r"] is None else f"{s['pearson_r']:.3f}"
        click.echo(
            f"epoch time predicted by {check['profile']}: median error {s['median_abs_error']:.1%}, "
            f"max {s['max_abs_error']:.1%}, {s['within_10pct']:.0%} within ±10%, r {r} "
            f"({s['n']} models, {check['images']} images per epoch, batch {check['batch']}); "
            f"measured: {check['measured']}"
        )


def _show(verdicts: list[dict]) -> None:
    rows = [
        {
            "space": v["space"],
            "regime": f"{v['regime']} ({v['level']})",
            "winner": v["winner"] + (f" {v['winner_strategy']}" if v["winner_strategy"] else ""),
            "error %": round(v["winner_error"] * 100, 2),
            "runner-up": v["runner_up"] or "-",
            "margin %": None if v["margin"] is None else round(v["margin"] * 100, 2),
            "judgement": v["judgement"],
        }
        for v in verdicts
    ]
    if rows:
        print_table(rows, title="verdict")


@click.command("report")
@click.argument("study_dir", type=click.Path())
@click.option(
    "--profile",
    help="Runtime profile (NAME or FILE): also report predicted vs measured epoch times.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def report_cmd(study_dir, profile, as_json):
    """Rebuild DIR/report.html from a comparison's stored results (no training)."""
    import json
    from pathlib import Path

    check = None if profile is None else study_epoch_time_check(study_dir, profile)
    path = rebuild_report(study_dir, check)
    summary = json.loads((Path(path).parent / "summary.json").read_text())
    if as_json:
        out = {"report": str(path), "verdict": summary["verdict"]}
        echo_json(out if check is None else {**out, "epoch_time_check": check})
        return
    _show(summary["verdict"])
    for line in summary["sentences"]:
        click.echo(line)
    if check is not None:
        _show_check(check)
    click.echo(f"open {path}")
