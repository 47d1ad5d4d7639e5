"""The `fastscale` command line. Commands live in modules by what they drive (spaces,
planner, profile, train, study, compare, analyze); a command's module is imported only when
that command runs (or when `--help` lists them all), and heavy imports (torch, ray, optuna,
pandas) happen inside the commands, so `fastscale plan` loads the planner and nothing else."""

from __future__ import annotations

import importlib
import sys

import click

from spaces.errors import FastscaleError
from spaces.io import first_line, short_path

# Every command: name -> ("module:attribute" under trials.cli, its one-line summary). The
# summary is the one source of the command's short help: `fastscale --help` lists the table
# without importing a command module, and a loaded command gets it as its `short_help`.
COMMANDS = {
    "models": ("spaces_cmds:models_cmd", "List registered models (optionally matching a glob)."),
    "complexity": ("spaces_cmds:complexity_cmd", "Exact flops, params, acts of any model or spec."),
    "sample": ("spaces_cmds:sample_cmd", "Draw N distinct models in a flop regime (seeded)."),
    "export": ("spaces_cmds:export_cmd", "Export a model: pycls config, spec, TorchScript, ONNX."),
    "scale": ("planner_cmds:scale_cmd", "Scale SPEC by --factor S or to --target FLOPS."),
    "plan": ("planner_cmds:plan_cmd", "Ranked α/s plans to --target under budgets; the one to take."),
    "candidates": ("planner_cmds:candidates_cmd", "Filter and rank models by budgets."),
    "profile": ("profile_cmds:profile_group", "Runtime profiles: fit, show, list, predict."),
    "train": ("train_cmds:train_cmd", "Train SPEC under the fixed recipe (resumable)."),
    "time": ("train_cmds:time_cmd", "Seconds per training step of each SPEC (timing protocol)."),
    "calibrate": ("train_cmds:calibrate_cmd", "Time a diverse set of networks; fit an ops profile."),
    "study": ("study_cmds:study_group", "Search studies on Ray Tune: run, show, repair, submit."),
    "compare": ("compare_cmds:compare_cmd", "Scaling vs search vs hybrid as one resumable study."),
    "report": ("compare_cmds:report_cmd", "Rebuild a comparison's report from stored results."),
    "analyze": ("analyze_cmds:analyze_cmd", "Compare design spaces by their error distributions."),
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are imported when used (click's documented lazy-loading
    pattern): the table above instead of eager `add_command` calls."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx, cmd_name):
        if cmd_name not in COMMANDS:
            return None
        where, summary = COMMANDS[cmd_name]
        module, attribute = where.split(":")
        command = getattr(importlib.import_module(f"trials.cli.{module}"), attribute)
        command.short_help = summary
        return command

    def format_commands(self, ctx, formatter) -> None:
        """The command list from the table alone (no command module is imported)."""
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="fastscale")
def cli():
    """fastscale: exact RegNet/EfficientNet complexity, scaling plans, search studies on Ray."""


def one_line(exc: BaseException) -> str:
    """An error message on one line (a message quoting a parser may hold newlines)."""
    return " ".join(str(exc).split()) or first_line(exc)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input prints one line on stderr and exits 2, never a traceback."""
    try:
        # a command's click.exceptions.Exit(code) comes back as the return value here
        code = cli.main(args=argv, prog_name="fastscale", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())
        return 0
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"fastscale: error: {exc.format_message()}{hint}", err=True)
        return 2
    except FastscaleError as exc:
        click.echo(f"fastscale: error: {one_line(exc)}", err=True)
        return 2
    except OSError as exc:  # a path the operating system refuses (too long, no permission)
        where = f" ({short_path(exc.filename)})" if exc.filename else ""
        click.echo(f"fastscale: error: {exc.strerror or one_line(exc)}{where}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("fastscale: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("fastscale: interrupted; completed work is kept", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
