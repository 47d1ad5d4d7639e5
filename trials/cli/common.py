"""Shared CLI helpers: one-line errors, JSON output, tables, unit-typed options."""

from __future__ import annotations

import math
import shlex
import sys

import click

from spaces.errors import FastscaleError
from spaces.io import dumps_json
from spaces.units import UnitError, parse_quantity


class CliError(FastscaleError):
    """Raised by commands for bad input; printed as one line, exit status 2."""


def fail(message: str) -> None:
    raise CliError(message)


class Quantity(click.ParamType):
    """A click type for 400MF / 4GF / 4e9 / 20M / plain integers."""

    name = "quantity"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_quantity(value, what=f"--{param.name.replace('_', '-')}" if param else "")
        except UnitError as exc:
            self.fail(str(exc), param, ctx)


QUANTITY = Quantity()


class Finite(click.FloatRange):
    """click.FloatRange that also refuses NaN and infinities (which compare False)."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return value


# A seed feeds numpy's and torch's generators: both take 0 .. 2**32 - 1 (numpy refuses < 0).
SEED = click.IntRange(0, 2**32 - 1)


def command_line(ctx: click.Context) -> str:
    """The command that reruns `ctx`'s invocation: its arguments and every option that differs
    from its default, shell-quoted (so a printed resume command is exact and copyable)."""
    parts = ctx.command_path.split()
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            parts += [str(v) for v in (value if isinstance(value, tuple) else (value,))]
            continue
        # get_default, not .default: click >= 8.3 keeps an unset default as a sentinel
        if value is None or value == param.get_default(ctx) or param.name == "as_json":
            continue
        if param.is_flag:  # a flag away from its default: its on or its off spelling
            spelled = param.opts if value else param.secondary_opts
            if spelled:  # an off value of a flag without an off spelling is its default
                parts.append(max(spelled, key=len))
        else:
            parts += [max(param.opts, key=len), str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def echo_json(data) -> None:
    """Strict JSON on stdout: NaN and infinities print as null."""

    click.echo(dumps_json(data, indent=2))


def print_table(rows: list[dict], columns: list[str] | None = None, title: str | None = None):
    """A human-readable table (rich); numbers right-aligned."""
    from rich.console import Console
    from rich.table import Table

    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        sample = next((r.get(col) for r in rows if r.get(col) is not None), "")
        numeric = isinstance(sample, int | float) and not isinstance(sample, bool)
        table.add_column(col, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)
