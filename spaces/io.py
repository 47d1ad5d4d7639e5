"""Spec files (JSON or YAML, one spec or a list) and resolving a registry name or a path.

`read_text_file` and `read_data_file` are the one way every command reads a user's file
(specs, profiles, timings, presets): a regular file only (a FIFO or /dev/zero would block
or never end), at most MAX_FILE_BYTES, UTF-8, and a JSON/YAML document nested at most a few
hundred levels with a bounded number of YAML aliases. Each failure is one FastscaleError.
PyYAML is imported where YAML is read or written: loading it takes about half as long as all
of `spaces`' own modules, and most commands read JSON or nothing.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np

from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.pycls_reader import spec_from_pycls
from spaces.registry import Spec, get_model, is_model
from spaces.safe_write import write_file
from spaces.specs import SpecError, spec_from_dict

MAX_FILE_BYTES = 16 * 1024**2  # spec, profile, timings and preset files are kilobytes
MAX_YAML_ALIASES = 1000  # anchors are for sharing a few blocks, not for alias bombs


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (parsers write several)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def short_path(path: str | Path, limit: int = 120) -> str:
    """A path as quoted in one-line messages, shortened in the middle when very long."""
    text = str(path)
    return repr(text if len(text) <= limit else text[: limit // 2] + "…" + text[-limit // 2 :])


def read_text_file(path: str | Path, what: str, error: type[Exception] = FastscaleError) -> str:
    """The UTF-8 text of a regular file of at most MAX_FILE_BYTES, or `error` saying why not."""
    shown = short_path(path)
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or first_line(exc)
        raise error(f"cannot read {what} {shown}: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise error(f"cannot read {what} {shown}: {kind}")
    if info.st_size > MAX_FILE_BYTES:
        raise error(
            f"{what} {shown} is {info.st_size:,} bytes; at most {MAX_FILE_BYTES:,} are read"
        )
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise error(f"{what} {shown} is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {shown} is not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x}); "
            "save it as UTF-8 JSON or YAML"
        ) from None


def json_safe(obj):
    """`obj` with NaN and infinities as None (JSON has no NaN) and numpy scalars, arrays and
    tuples as plain Python values, recursively."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dumps_json(obj, **kwargs) -> str:
    """Strict JSON text (NaN and infinities written as null)."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def _yaml_loader():
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """yaml.SafeLoader that refuses documents with more than MAX_YAML_ALIASES aliases."""

        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases")
            return super().compose_node(parent, index)

    return BoundedLoader


def parse_data(text: str, as_json: bool, what: str, error: type[Exception] = FastscaleError):
    """JSON (as_json) or YAML text as Python data, or `error` with the parser's first line."""
    import yaml

    kind = "JSON" if as_json else "YAML"
    try:
        if as_json:
            return json.loads(text)
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise error(f"{what} is nested too deeply to be a {kind} document") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{what} is not valid {kind}: {first_line(exc)}") from None


def read_data_file(path: str | Path, what: str, error: type[Exception] = FastscaleError):
    """A JSON (by .json suffix) or YAML file's data, read and parsed with the limits above."""
    text = read_text_file(path, what, error)
    return parse_data(
        text, Path(path).suffix.lower() == ".json", f"{what} {short_path(path)}", error
    )


def load_specs(path: str | Path) -> list[Spec]:
    """Every spec in a JSON/YAML file (fastscale fields or a pycls config); a single mapping
    gives a list of one."""
    data = read_data_file(path, "spec file", SpecError)
    if isinstance(data, dict) and "MODEL" in data and "family" not in data:
        try:
            return [spec_from_pycls(data)]
        except FastscaleError as exc:
            raise SpecError(f"{path}: {exc}") from None
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
    return isinstance(read_data_file(path, "spec file", SpecError), list)


def resolve_specs(ref: str) -> list[Spec]:
    """A registry name (case-insensitive) or a spec file path."""
    if not ref.strip():
        raise SpecError("a spec must be a registry name (see `fastscale models`) or a file path")
    if len(ref) > 4096:
        raise SpecError(f"spec {short_path(ref)} is {len(ref)} characters; neither a model name "
                        "nor a usable path")  # fmt: skip
    if is_model(ref):
        return [get_model(ref)]
    if _exists(ref) or Path(ref).suffix.lower() in (".json", ".yaml", ".yml") or "/" in ref:
        return load_specs(ref)  # a path: a missing file says so, not "unknown model"
    get_model(ref)  # raises with close matches
    raise AssertionError  # pragma: no cover


def _exists(ref: str) -> bool:
    try:
        return os.path.lexists(ref)
    except (OSError, ValueError):
        return False


def resolve_labeled(refs: list[str]) -> tuple[list[tuple[str, Spec]], bool]:
    """[(label, spec)] for registry names and spec files, in order, and whether JSON output
    must be a list (several references, or a file that holds a list)."""
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
    return {**spec.to_dict(), **complexity(spec).as_dict(), **extra}


def save_specs(path: str | Path, specs: list[Spec | dict] | Spec | dict) -> None:
    """Write a list of specs (or records), or one, as JSON or YAML by suffix, atomically
    and only over a regular file (spaces.safe_write)."""
    import yaml

    path = Path(path)
    one = not isinstance(specs, list)
    records = [s if isinstance(s, dict) else spec_record(s) for s in ([specs] if one else specs)]
    payload = records[0] if one else records
    if path.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(payload, sort_keys=False)
    else:
        text = json.dumps(payload, indent=2) + "\n"
    write_file(path, text)
