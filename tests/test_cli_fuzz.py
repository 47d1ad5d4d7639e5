"""Every bad or edge-case input of the table in tests/fuzz_cli.py gets one clean line (exit 2,
`fastscale: error: ...`) or a correct result: no traceback, hang, memory blow-up, silently
accepted bad input or multi-line answer. Each case runs in a forked child with a timeout and
a memory cap (see tests/fuzz_cli.py)."""

from __future__ import annotations

import pytest

from tests.fuzz_cli import cases, counts, run_table


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_table(tmp_path_factory.mktemp("fuzz"), timeout=20.0)


def test_table_covers_every_command():
    from trials.cli import cli

    covered = {c.argv[0] for c in cases()} | {" ".join(c.argv[:2]) for c in cases()}
    for name, cmd in cli.commands.items():
        subs = getattr(cmd, "commands", None)
        for sub in subs or [None]:
            full = name if sub is None else f"{name} {sub}"
            assert full in covered, f"the fuzz table has no case for `fastscale {full}`"


def test_every_case_is_clean(results):
    bad = [
        f"{r.outcome}: fastscale {' '.join(a[:60] for a in r.argv)}\n  {r.stderr.strip()[-300:]}"
        for r in results
        if r.outcome != "clean"
    ]
    assert not bad, f"{counts(results)}\n" + "\n".join(bad)
