"""Every CLI option has a test that uses it.

`test_every_option_has_a_test` walks the click commands of trials.cli.COMMANDS and fails
for an option that no test function uses with its command: a function counts for `study run
--keep-weights` when its string constants, with those of the module-level names it reads
(argv lists such as TINY), hold the command's words (`study`, `run`) and the flag (or
`--flag=...`). The bad-input table (tests/fuzz_cli.py) does not count: it shows a
flag refuses bad values, not that it does anything. An option no test can exercise here is
listed in EXEMPT with the reason. tests/test_cli_flags.py holds the tests of the options
that had none, each failing if its flag did nothing.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import click

from trials.cli import COMMANDS

TESTS = Path(__file__).parent
NOT_COUNTED = {"fuzz_cli.py", "test_cli_fuzz.py", Path(__file__).name}  # this table
# (command, flag) -> why no test exercises it; the coverage test fails on a stale entry too
SHARED = "the same click option as `study run`'s (trials/cli/study_options.py)"
REPAIR = (
    f"{SHARED}; repair restates the study definition with it, parsed by the same code as "
    "study run's (trials.study.define), and tests/test_study_repair.py restates one"
)
EXEMPT = {
    ("calibrate", "--seed"): "picks the random half of the diverse calibration set, which "
    "only a calibration without SPEC times (about a minute here); left to the benchmarks",
    ("study repair", "--checkpoint-storage"): "repair reads another storage through "
    "trials.study.checkpoint_storage like every driver; no repair test keeps its "
    "checkpoints outside the study yet (open)",
    ("train", "--num-workers"): "DataLoader worker processes: changes speed only; results are "
    "bitwise the same by design (docs/training.md), so no test can see it",
    **{("study repair", f): REPAIR for f in (
        "--tolerance", "--sampler", "--storage", "--specs", "--seed", "--dataset",
        "--base-lr", "--scheduler", "--pruner", "--grace-epochs", "--reduction-factor")},
}  # fmt: skip


def _commands():
    """(command path, click command) of every leaf command."""

    def walk(path, cmd):
        if isinstance(cmd, click.Group):
            for sub, child in cmd.commands.items():
                yield from walk(f"{path} {sub}", child)
        else:
            yield path, cmd

    for name, (where, _) in COMMANDS.items():
        module, attribute = where.split(":")
        yield from walk(name, getattr(importlib.import_module(f"trials.cli.{module}"), attribute))


def _constants(node) -> set[str]:
    """The string constants under an AST node, whole and split on whitespace."""
    out = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            out.add(child.value)
            out.update(child.value.split())
    return out


def _functions(paths) -> dict[str, set[str]]:
    """{module::function: the strings it uses}: its own constants plus those of the module-level
    names it reads (an argv list like TINY, imported from another test module or not) and of
    the module's functions it calls (a helper that puts the command name in front)."""
    trees = {p.stem: ast.parse(p.read_text()) for p in paths}
    names = {
        (stem, target.id): _constants(node.value)
        for stem, tree in trees.items()
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for stem, tree in trees.items():  # `from .test_x import TINY` reads test_x's TINY
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in trees:
                for alias in node.names:
                    found = names.get((node.module, alias.name))
                    if found is not None:
                        names[(stem, alias.asname or alias.name)] = found
    functions = {
        (stem, node.name): node
        for stem, tree in trees.items()
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    out = {}
    for (stem, name), node in functions.items():
        used = _constants(node)
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                used |= names.get((stem, child.id), set())
                helper = functions.get((stem, child.id))  # `_run(...)` prefixing "analyze"
                if helper is not None and helper is not node:
                    used |= _constants(helper)
        out[f"{stem}::{name}"] = used
    return out


def _uses(strings: set[str], words: list[str], flags: list[str]) -> bool:
    if not all(w in strings for w in words):
        return False
    return any(f in strings or any(s.startswith(f + "=") for s in strings) for f in flags)


def test_every_option_has_a_test():
    paths = [p for p in sorted(TESTS.glob("test_*.py")) if p.name not in NOT_COUNTED]
    modules = _functions(paths)
    untested, stale, seen = [], [], set()
    for path, cmd in _commands():
        for param in cmd.params:
            if not isinstance(param, click.Option):
                continue
            flags = [f for f in param.opts + param.secondary_opts if f.startswith("--")]
            flags += [f for f in param.opts if not f.startswith("--")]
            tested = any(_uses(s, path.split(), flags) for s in modules.values())
            key = next(((path, f) for f in flags if (path, f) in EXEMPT), None)
            if key:
                seen.add(key)
                if tested:
                    stale.append(key)
            elif not tested:
                untested.append(f"fastscale {path} {flags[0]}")
    assert not untested, "options without a test (add one, or EXEMPT with a reason):\n" + (
        "\n".join(untested)
    )
    assert not stale, f"tested now, drop them from EXEMPT: {stale}"
    assert set(EXEMPT) == seen, f"EXEMPT names options that do not exist: {set(EXEMPT) - seen}"
