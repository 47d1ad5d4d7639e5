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

# Every command: name -> "module:attribute" under trials.cli (click objects, loaded lazily).
COMMANDS = {
    "models": "spaces_cmds:models_cmd",
    "complexity": "spaces_cmds:complexity_cmd",
    "sample": "spaces_cmds:sample_cmd",
    "export": "spaces_cmds:export_cmd",
    "scale": "planner_cmds:scale_cmd",
    "plan": "planner_cmds:plan_cmd",
    "candidates": "planner_cmds:candidates_cmd",
    "profile": "profile_cmds:profile_group",
    "train": "train_cmds:train_cmd",
    "time": "train_cmds:time_cmd",
    "calibrate": "train_cmds:calibrate_cmd",
    "study": "study_cmds:study_group",
    "compare": "compare_cmds:compare_cmd",
    "report": "compare_cmds:report_cmd",
    "analyze": "analyze_cmds:analyze_cmd",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when used (click's documented lazy-loading
    pattern): the table above instead of eager `add_command` calls."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx, cmd_name):
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        return getattr(importlib.import_module(f"trials.cli.{module}"), attribute)


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
