"""The `fastscale` command line. Each command group lives in its own module; heavy imports
(torch, ray, optuna, pandas) happen inside the commands, so `fastscale complexity` stays fast."""

from __future__ import annotations

import importlib
import sys

import click

from spaces.errors import FastscaleError
from spaces.io import first_line, short_path

# Modules that add commands to the group; each defines `register(group)`.
COMMAND_MODULES = (
    "spaces_cmds",
    "planner_cmds",
    "profile_cmds",
    "train_cmds",
    "study_cmds",
    "compare_cmds",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="fastscale")
def cli():
    """fastscale: exact RegNet/EfficientNet complexity, scaling plans, search studies on Ray."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"trials.cli.{_name}").register(cli)


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
