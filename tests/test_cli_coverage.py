"""Every CLI option has a test that uses it.

`test_every_option_has_a_test` walks the click commands of trials.cli.COMMANDS and fails
for an option that no test module uses with its command: a module counts for `study run
--keep-weights` when its string constants hold the command's words (`study`, `run`) and the
flag (or `--flag=...`). The bad-input table (tests/fuzz_cli.py) does not count: it shows a
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
SUBMIT = (
    f"{SHARED}; submit forwards it into the job's `study run` command line, which "
    "test_submit_forwards_every_option checks for every option at once"
)
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
    ("compare", "--address"): "attaches to a running cluster: the same code path as study "
    "run --address (trials.study.runner.ray_session), tested there",
    **{("study submit", f): SUBMIT for f in (
        "--tolerance", "--specs", "--dataset", "--batch-size", "--base-lr", "--scheduler",
        "--pruner", "--grace-epochs", "--reduction-factor", "--max-failures",
        "--cpus-per-trial", "--gpus-per-trial", "--time-batch", "--checkpoint-storage",
        "--keep-weights")},
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

    for name, where in COMMANDS.items():
        module, attribute = where.split(":")
        yield from walk(name, getattr(importlib.import_module(f"trials.cli.{module}"), attribute))


def _strings(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.add(node.value)
            out.update(node.value.split())
    return out


def _uses(strings: set[str], words: list[str], flags: list[str]) -> bool:
    if not all(w in strings for w in words):
        return False
    return any(f in strings or any(s.startswith(f + "=") for s in strings) for f in flags)


def test_every_option_has_a_test():
    modules = {p.name: _strings(p) for p in sorted(TESTS.glob("test_*.py"))}
    modules = {name: s for name, s in modules.items() if name not in NOT_COUNTED}
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
