"""Spec files (JSON or YAML, one spec or a list) and resolving a registry name or a path."""

from __future__ import annotations

import json
from pathlib import Path

from spaces.specs import Spec, SpecError, spec_from_dict


def load_specs(path: str | Path) -> list[Spec]:
    """Every spec in a JSON/YAML file; a single mapping gives a list of one."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise SpecError(f"spec file {str(path)!r} is not valid JSON/YAML: {first}") from None
    entries = data if isinstance(data, list) else [data]
    if not entries:
        raise SpecError(f"spec file {str(path)!r} holds no spec")
    specs = []
    for i, entry in enumerate(entries):
        try:
            specs.append(spec_from_dict(entry))
        except SpecError as exc:
            where = f" (entry {i})" if isinstance(data, list) else ""
            raise SpecError(f"{path}{where}: {exc}") from None
    return specs


def is_list_file(path: str | Path) -> bool:
    """Whether a spec file holds a list (so JSON output stays a list even for one entry)."""
    import yaml

    text = Path(path).read_text()
    data = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    return isinstance(data, list)


def resolve_specs(ref: str) -> list[Spec]:
    """A registry name (case-insensitive) or a spec file path."""
    from spaces.registry import get_model, is_model

    if is_model(ref):
        return [get_model(ref)]
    if Path(ref).exists():
        return load_specs(ref)
    get_model(ref)  # raises with close matches
    raise AssertionError  # pragma: no cover


def resolve_labeled(refs: list[str]) -> tuple[list[tuple[str, Spec]], bool]:
    """[(label, spec)] for registry names and spec files, in order, and whether JSON output
    must be a list (several references, or a file that holds a list)."""
    from spaces.registry import is_model

    out, as_list = [], len(refs) > 1
    for ref in refs:
        specs = resolve_specs(ref)
        if not is_model(ref) and is_list_file(ref):
            as_list = True
        out.extend((ref if len(specs) == 1 else f"{ref}[{i}]", s) for i, s in enumerate(specs))
    return out, as_list


def resolve_spec(ref: str) -> Spec:
    specs = resolve_specs(ref)
    if len(specs) != 1:
        raise SpecError(f"{ref!r} holds {len(specs)} specs; this command takes exactly one")
    return specs[0]


def spec_record(spec: Spec, **extra) -> dict:
    """A spec's fields plus its complexity, as written by `sample --out` and `--json`."""
    from spaces.complexity import complexity

    return {**spec.to_dict(), **complexity(spec).as_dict(), **extra}


def save_specs(path: str | Path, specs: list[Spec | dict] | Spec | dict) -> None:
    """Write a list of specs (or records), or one, as JSON or YAML by suffix, atomically
    and only over a regular file (spaces.safe_write)."""
    import yaml

    from spaces.safe_write import write_file

    path = Path(path)
    one = not isinstance(specs, list)
    records = [s if isinstance(s, dict) else spec_record(s) for s in ([specs] if one else specs)]
    payload = records[0] if one else records
    if path.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(payload, sort_keys=False)
    else:
        text = json.dumps(payload, indent=2) + "\n"
    write_file(path, text)
