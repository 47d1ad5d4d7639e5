"""The README tour's and the docs' cheap example commands still run as written.

Every `fastscale ...` line of a code block in README.md and docs/*.md whose command is cheap
(models, complexity, sample, scale, plan, export to pycls/timm, profile) runs in-process, in
order, in one scratch directory per document (so `plan --out-dir plans/` then `export
plans/01-dWr.json` works as the reader would type it), and must exit 0. Training, studies,
timing, calibration and comparisons are left to their own tests (minutes each). The
placeholder PROFILE and the docs' profiles/this-cpu.json are a real profile calibrated on the
development VM (tests/data/cpu-b16.json: `fastscale calibrate --clock cpu --threads 1`)."""

import re
import shlex
from pathlib import Path

import pytest

from trials.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "tests" / "data" / "cpu-b16.json"
PLACEHOLDERS = {"PROFILE": str(PROFILE), "profiles/this-cpu.json": str(PROFILE)}
CHEAP = {"models", "complexity", "sample", "scale", "plan", "export", "profile"}
EXPORT_FORMATS = {"pycls", "timm"}
PREFIX = re.compile(r"^(?:\$ |\.venv/bin/)?fastscale\s")


def _blocks(text: str):
    """The lines of every fenced code block, with their 1-based line numbers."""
    inside, lines = False, []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if inside:
                yield lines
            inside, lines = not inside, []
        elif inside:
            lines.append((number, line))


def _commands(path: Path):
    """(line number, argv after `fastscale`) of each command line, continuations joined."""
    for block in _blocks(path.read_text()):
        pending, start = None, 0
        for number, line in block:
            if pending is None:
                if not PREFIX.match(line):
                    continue
                pending, start = PREFIX.sub("", line, count=1), number
            else:
                pending += " " + line.strip()
            if pending.rstrip().endswith("\\"):
                pending = pending.rstrip()[:-1]
                continue
            yield start, shlex.split(pending, comments=True)
            pending = None


def _cheap(argv: list[str]) -> bool:
    if not argv or argv[0] not in CHEAP:
        return False
    if argv[0] == "export":
        fmt = argv[argv.index("--format") + 1] if "--format" in argv else "pycls"
        return fmt in EXPORT_FORMATS and "--checkpoint" not in argv
    return True


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [
    (doc.name, number, [PLACEHOLDERS.get(a, a) for a in argv])
    for doc in DOCS
    for number, argv in _commands(doc)
    if _cheap(argv)
]


def test_the_examples_are_found():
    """A parser that finds nothing would pass every example: the tour's must be there."""
    readme = [argv[0] for doc, _, argv in EXAMPLES if doc == "README.md"]
    assert {"models", "complexity", "sample", "scale", "plan", "export"} <= set(readme)
    assert len(readme) >= 9 and len(EXAMPLES) >= 20


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    return {doc.name: tmp_path_factory.mktemp(doc.stem) for doc in DOCS}


@pytest.mark.parametrize("doc, number, argv", EXAMPLES, ids=[f"{d}:{n}" for d, n, _ in EXAMPLES])
def test_example_runs(doc, number, argv, workdirs, monkeypatch, capsys):
    monkeypatch.chdir(workdirs[doc])
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 0, f"{doc}:{number}: fastscale {shlex.join(argv)} -> exit {code}: {err}"
