"""The project's import graph, read from source (ast), for the layering rules of
docs/architecture.md: every import of a project module counts, at module level or inside a
function, so a circle hidden by a function-level import is still a circle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("spaces", "planner", "trials")
# Packages from left to right: a module may import only its own package and those to its
# left. `trials` itself (its __init__, __main__ and the progress leaf) is special-cased below.
LAYERS = (
    "spaces",
    "planner",
    "trials.data",
    "trials.training",
    "trials.timing",
    "trials.study",
    "trials.analysis",
    "trials.compare",
    "trials.cli",
)
TOP_LEAVES = ("trials", "trials.progress")  # importable by every trials module; import no layer
HEAVY = ("torch", "ray", "optuna", "pandas", "matplotlib", "mlflow", "scipy", "pyarrow")
HEAVY += ("onnx", "onnxscript", "timm", "torchvision", "tensorboard", "PIL", "rich", "pydantic")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported project module
    line: int
    in_function: bool
    type_only: bool


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages under root."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _owner(name: str, mods: dict) -> str | None:
    """The project module a dotted name lives in ('spaces.io.load_spec' -> 'spaces.io')."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _names(node, module: str, mods: dict) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # relative: resolve against the importing package
        package = module if mods[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [f"{base}.{a.name}" for a in node.names]


def _scopes(tree) -> tuple[set, set]:
    """ids of nodes inside functions, and inside `if TYPE_CHECKING:` blocks."""
    in_function, type_only = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            in_function.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    return in_function, type_only


def imports(root: Path) -> tuple[dict[str, Path], list[Import], dict[str, list[str]]]:
    """(modules, project imports, third-party top-level roots each module imports at its top)."""
    mods = modules(root)
    found, third_party = [], {}
    for module, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        in_function, type_only = _scopes(tree)
        third_party[module] = []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _names(node, module, mods):
                target = _owner(name, mods)
                if target is None:
                    if id(node) not in in_function and id(node) not in type_only:
                        third_party[module].append(name.split(".")[0])
                elif target != module:
                    found.append(
                        Import(module, target, node.lineno, id(node) in in_function,
                               id(node) in type_only)
                    )  # fmt: skip
    return mods, list(dict.fromkeys(found)), third_party


def heavy_modules(mods, found: list[Import], third_party) -> set[str]:
    """Project modules that load a heavy third-party package when imported: directly at
    their top, or through a project module they import at their top (parents included)."""
    heavy = {m for m, roots in third_party.items() if any(r in HEAVY for r in roots)}
    top = [i for i in found if not i.in_function and not i.type_only]
    changed = True
    while changed:
        changed = False
        for i in top:
            if i.source in heavy:
                continue
            parts = i.target.split(".")
            chain = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
            if chain & heavy:
                heavy.add(i.source)
                changed = True
    return heavy


def circles(found: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for i in found:
        graph.setdefault(i.source, set()).add(i.target)
        graph.setdefault(i.target, set())
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def layer(module: str) -> int | None:
    """Position of the module's package in LAYERS (None for the trials top-level leaves)."""
    for n, name in reversed(list(enumerate(LAYERS))):
        if module == name or module.startswith(name + "."):
            return n
    return None


def against_direction(found: list[Import]) -> list[Import]:
    """Imports of a package to the right of the importer's own (a back-import)."""
    bad = []
    for i in found:
        if i.target in TOP_LEAVES:
            if i.source in TOP_LEAVES and i.target == "trials":
                continue
            if layer(i.source) is not None and layer(i.source) < layer("trials.data"):
                bad.append(i)  # spaces/planner never import trials
            continue
        if i.source == "trials.__main__":
            continue
        if i.source in TOP_LEAVES:
            if layer(i.target) >= layer("trials.data"):
                bad.append(i)  # the leaves import no trials package
        elif layer(i.source) < layer(i.target):
            bad.append(i)
    return bad


def needless_function_imports(found: list[Import], heavy: set[str]) -> list[Import]:
    """Function-level imports of project modules that load nothing heavy: they belong at the
    top of the module (a function-level import hides the graph, and only heavy ones pay)."""
    out = []
    for i in found:
        if not i.in_function or i.type_only:
            continue
        parts = i.target.split(".")
        if not {".".join(parts[:n]) for n in range(1, len(parts) + 1)} & heavy:
            out.append(i)
    return out
