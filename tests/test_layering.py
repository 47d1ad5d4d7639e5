"""The package rules of docs/architecture.md, checked on the source: no import circles
(function-level imports included), imports only towards the left of
spaces <- planner <- trials.data <- training <- timing <- study <- analysis <- compare <- cli,
and function-level project imports only of modules that load heavy packages (torch, ray,
optuna, pandas, matplotlib, ...) at their top."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import layering

ROOT = Path(__file__).resolve().parents[1]


def _show(found) -> str:
    return "\n".join(f"{i.source}:{i.line} imports {i.target}" for i in found)


@pytest.fixture(scope="module")
def graph():
    return layering.imports(ROOT)


def test_the_project_has_no_import_circle(graph):
    _, found, _ = graph
    assert layering.circles(found) == []


def test_every_import_points_left(graph):
    _, found, _ = graph
    bad = layering.against_direction(found)
    assert not bad, "imports against the package order:\n" + _show(bad)


def test_function_level_project_imports_only_for_heavy_modules(graph):
    mods, found, third_party = graph
    heavy = layering.heavy_modules(mods, found, third_party)
    bad = layering.needless_function_imports(found, heavy)
    assert not bad, "move these imports to the top of the module:\n" + _show(bad)


def test_every_package_of_the_layout_exists_and_trials_keeps_few_top_modules(graph):
    mods, _, _ = graph
    for package in layering.LAYERS:
        if package != "trials.analysis" or package in mods:  # analysis: optional layer
            assert package in mods, package
    top = sorted(p.name for p in (ROOT / "trials").glob("*.py"))
    assert len(top) <= 6, top


def _python(code: str) -> str:
    """What a fresh interpreter prints running `code` in the repository root."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_pure_packages_load_no_torch_ray_or_pandas():
    """spaces and planner stay pure at import, and so do the CLI's fast paths."""
    code = (
        "import sys, spaces, spaces.registry, planner, planner.plan, trials.cli\n"
        "from trials.cli import COMMANDS\n"
        "import importlib\n"
        "for m in ('spaces_cmds', 'planner_cmds'): importlib.import_module('trials.cli.' + m)\n"
        "print(sorted(m for m in ('torch', 'ray', 'pandas', 'optuna', 'matplotlib')"
        " if m in sys.modules))"
    )
    assert _python(code) == "[]"


def _scratch_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in layering.PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


def test_the_checks_catch_a_back_import_a_circle_and_a_needless_lazy_import(tmp_path):
    """The rules above can fail: a scratch tree with one of each breach."""
    root = _scratch_tree(
        tmp_path,
        {
            "trials/data/__init__.py": "",
            "trials/data/a.py": "from trials.study.b import x\n",  # back-import
            "trials/study/__init__.py": "",
            "trials/study/b.py": "x = 1\ndef f():\n    from trials.study.c import y\n",
            "trials/study/c.py": "import torch\nfrom trials.study.b import x\ny = 2\n",
            "trials/study/d.py": "def g():\n    from trials.data.e import z\n",
            "trials/data/e.py": "z = 3\n",
        },
    )
    mods, found, third_party = layering.imports(root)
    assert layering.circles(found) == [["trials.study.b", "trials.study.c"]]
    assert [(i.source, i.target) for i in layering.against_direction(found)] == [
        ("trials.data.a", "trials.study.b")
    ]
    heavy = layering.heavy_modules(mods, found, third_party)
    assert "trials.study.c" in heavy  # torch at its top: a lazy import of it is fine
    lazy = layering.needless_function_imports(found, heavy)
    assert [(i.source, i.target) for i in lazy] == [("trials.study.d", "trials.data.e")]


def test_help_lists_every_command_without_importing_one():
    """`fastscale --help` lists the COMMANDS table (name and summary) and loads no command
    module, so it stays fast whatever the commands import."""
    code = (
        "import sys, io, contextlib\n"
        "from trials.cli import COMMANDS, main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out): main(['--help'])\n"
        "loaded = [m for m in sys.modules if m.startswith('trials.cli.') and m.endswith('_cmds')]\n"
        "missing = [n for n, (_, s) in COMMANDS.items() if n not in out.getvalue()"
        " or s.split()[0] not in out.getvalue()]\n"
        "print(loaded, missing)"
    )
    assert _python(code) == "[] []"
