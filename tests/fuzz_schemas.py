"""Fuzz cases generated from the file schemas (spaces.schema): for every field of every file
kind, a wrong type, an out-of-range or non-finite number, the field left out (when
required) and, per mapping, an unknown key one letter off. A field added to a schema is
fuzzed the day it is added; tests/test_cli_fuzz.py fails if a schema has no kind here.
"""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
NUMBERS = (int, float)
FAMILY: dict = {}


def kinds() -> dict:
    """kind -> (schema, good document, file suffix, argv with {file} and {dir})."""
    from planner.profiles import RuntimeProfile
    from spaces import get_model
    from spaces.resnet import ResNetSpec
    from spaces.sampler import DesignSpace
    from spaces.schema import dataclass_schema
    from spaces.space_file import space_to_dict
    from spaces.space_schema import SpaceFile
    from spaces.specs import EfficientNetSpec, RegNetSpec, StageSpec
    from trials.compare.meta import CompareMeta
    from trials.compare.preset_schema import PresetFile
    from trials.study.definition import StudyDefinition
    from trials.study.record_schema import CandidateRecord, StatusRecord
    from trials.training.recipe import TrainConfig

    preset = yaml.safe_load((ROOT / "trials/compare/presets/cpu-quick.yaml").read_text())
    study = {"source": "search", "space": "regnetx", "regime": 5_000_000, "n": 1,
             "tolerance": 0.01, "seed": 0, "sampler": "random", "storage": None,
             "train": {"dataset": "fashion-mnist", "resolution": 16, "epochs": 1}}  # fmt: skip
    profile = json.loads((ROOT / "planner/profiles/v100x8-paper.json").read_text())
    meta = {"preset": "tiny", "preset_source": "tiny.yaml", "dataset": "fashion-mnist",
            "samples": 4, "regimes": {"base": "0.5MF", "intermediate": "4MF", "top": "16MF"},
            "config": {}, "keys": ["k1"], "timing": None, "early_stop": None,
            "runs": [{"wall_s": 1.5, "finished": "2026-01-01 00:00:00", "trials": 1,
                      "host": "h", "cpus": 2}]}  # fmt: skip

    def spec(name: str, cls) -> tuple:
        doc = {k: v for k, v in get_model(name).to_dict().items() if k != "family"}
        return dataclass_schema(cls, tuple(cls.FILE_KEYS)), doc

    def family(doc: dict, cls) -> dict:
        FAMILY[id(doc)] = cls.family  # a file names its family; the schema is the family's
        return doc

    regnet, resnet = spec("RegNetY-200MF", RegNetSpec), spec("ResNet-50", ResNetSpec)
    effnet = spec("EfficientNet-B0", EfficientNetSpec)
    anynet = spec("RegNetY-200MF", StageSpec)
    anynet = (anynet[0], {k: v for k, v in get_model("RegNetY-200MF").stages().to_dict().items()
                          if k != "family"})  # fmt: skip
    req = ("name", "c0", "c_acts", "c_flops")
    candidate = {"key": "0123456789ab", "spec": regnet[1], "train": preset["train"],
                 "created": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    preset_argv = ("compare", "--preset", "{file}", "--out", "{dir}/o")
    return {
        "preset": (PresetFile, preset, ".yaml", preset_argv),
        "study": (dataclass_schema(StudyDefinition), study, "", ("study", "run", "--out", "{file}")),
        "regnet": (regnet[0], family(regnet[1], RegNetSpec), ".json", ("complexity", "{file}")),
        "resnet": (resnet[0], family(resnet[1], ResNetSpec), ".json", ("complexity", "{file}")),
        "effnet": (effnet[0], family(effnet[1], EfficientNetSpec), ".json", ("complexity", "{file}")),
        "anynet": (anynet[0], family(anynet[1], StageSpec), ".json", ("complexity", "{file}")),
        "compare": (CompareMeta, meta, "", ("report", "{file}")),
        "space": (SpaceFile, space_to_dict(DesignSpace.named("regnetx"), "regnetx", "s"), ".yaml",
                  ("sample", "--space", "{file}", "--regime", "400MF", "-n", "1")),
        # a damaged record is skipped with a warning (study repair fixes it): schema level only
        "candidate": (CandidateRecord, candidate, ".json", None),
        "status": (StatusRecord, {"status": "done", "attempts": 1, "failures": 0,
                                  "epochs_done": 1, "error": 0.2}, ".json", None),
        "train": (dataclass_schema(TrainConfig), preset["train"], ".yaml", preset_argv),
        "profile": (dataclass_schema(RuntimeProfile, (), req), profile, ".json",
                    ("profile", "show", "{file}")),
    }  # fmt: skip


def _nested(annotation):
    from spaces.schema import _model_of

    return _model_of(annotation)


def _accepts(annotation, kind) -> bool:
    """Whether values of `kind` (dict, int, float) can satisfy the annotation."""
    import types

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _accepts(typing.get_args(annotation)[0], kind)
    base = origin or annotation
    return isinstance(base, type) and issubclass(base, kind)


def _wrong(ann):
    """A value of a type the annotation does not take (a section takes a mapping)."""
    for value, kind in (({"b": 1}, dict), ("x", str), (1.5, float), ([1.5], list)):
        if not _accepts(ann, kind) and not (kind is dict and _nested(ann) is not None):
            return value
    raise AssertionError(f"no wrong type for {ann}")


def _bound(field) -> object | None:
    """A value just outside the field's declared range (None: no range declared)."""
    for m in field.metadata:
        for name, outside in (("ge", -1), ("gt", 0), ("lt", 0), ("le", 1)):
            v = getattr(m, name, None)
            if v is not None:
                return v + outside
    return None


def sections(ann, value) -> list[tuple[type, tuple]]:
    """(schema, key path) of the mappings under a field: a section (`resources:`), one per
    key of a mapping of sections (`base: {regnety: {...}}`), the first of a list (`runs`)."""
    origin = typing.get_origin(ann)
    if origin in (dict, list):
        sub = _nested(typing.get_args(ann)[-1])
        if sub is None:
            return []
        if origin is list:
            return [(sub, (0,))]
        return [(sub, (str(k),)) for k in (value if isinstance(value, dict) else [])]
    sub = _nested(ann)
    return [(sub, ())] if sub is not None else []


def mutations(schema, doc: dict, path: tuple = ()) -> list[tuple[str, str, dict]]:
    """(field path, what, mutated document) for every field of `schema`, recursively."""
    out = []
    for name, field in schema.model_fields.items():
        where = ".".join(map(str, (*path, name)))
        ann = field.annotation
        out.append((where, "wrong type", _set(doc, (*path, name), _wrong(ann))))
        bound = _bound(field)
        if bound is not None:
            out.append((where, "out of range", _set(doc, (*path, name), bound)))
        elif _accepts(ann, float) or _accepts(ann, int):
            out.append((where, "not finite", _set(doc, (*path, name), float("inf"))))
        if field.is_required():
            out.append((where, "missing", _set(doc, (*path, name), None, delete=True)))
        value = _get(doc, (*path, name))
        for sub, keys in sections(ann, value):
            at = (*path, name, *keys)  # an absent optional section: fuzzed from an empty one
            base = doc if isinstance(_get(doc, at), dict) else _set(doc, at, {})
            out += mutations(sub, base, at)
    if schema.model_fields and schema.model_config.get("extra") == "forbid":
        key = next(iter(schema.model_fields)) + "x"  # one letter off: "did you mean"
        out.append((".".join(map(str, (*path, key))), "unknown key", _set(doc, (*path, key), 1)))
    return out


def _get(doc, path):
    for p in path:
        if isinstance(doc, list) and isinstance(p, int) and p < len(doc):
            doc = doc[p]
        elif isinstance(doc, dict) and p in doc:
            doc = doc[p]
        else:
            return None
    return doc


def _set(doc: dict, path: tuple, value, delete: bool = False) -> dict:
    new = copy.deepcopy(doc)
    node = new
    for p in path[:-1]:
        if isinstance(p, int):  # a list item: the list gets one when it is empty
            if not node:
                node.append({})
            node = node[p]
        else:
            node = node.setdefault(p, {})
    last = path[-1]
    if delete:
        node.pop(last) if isinstance(node, list) else node.pop(last, None)
    else:
        node[last] = value
    return new


def generated() -> list[tuple[str, str, str, dict]]:
    """(kind, field path, what, document) of every generated case."""
    return [
        (kind, where, what, mutated)
        for kind, (schema, doc, _, _) in kinds().items()
        for where, what, mutated in mutations(schema, doc)
    ]


def argv_of(i: int, kind: str) -> tuple[str, ...]:
    """The command of generated case i, with placeholders the fuzz runner fills in."""
    argv = kinds_argv()[kind]
    if argv is None:
        return None
    return tuple(a.replace("{file}", f"{{schema_{i}}}").replace("{dir}/o", f"{{dir}}/so{i}")
                 for a in argv)  # fmt: skip


def kinds_argv() -> dict:
    return {kind: argv for kind, (_, _, _, argv) in kinds().items()}


def write(root: Path) -> dict[str, str]:
    """Write every generated document under root; {placeholder: path}."""
    table = kinds()
    files = {}
    (root / "schema").mkdir(parents=True, exist_ok=True)
    for i, (kind, _, _, doc) in enumerate(generated()):
        suffix = table[kind][2]
        if table[kind][3] is None:
            continue
        path = root / "schema" / f"{kind}-{i}{suffix}"
        if kind == "study":
            path.mkdir()
            text = json.dumps({"magic": "fastscale-study", "version": 1, "definition": doc})
            (path / "study.json").write_text(text)
        elif kind == "compare":
            path.mkdir()
            (path / "compare.json").write_text(json.dumps(doc))
        else:
            if kind == "train":  # the recipe inside a preset
                doc = {**table["preset"][1], "train": doc}
            if table[kind][3][0] == "complexity":
                doc = {"family": FAMILY[id(table[kind][1])], **doc}
            path.write_text(yaml.safe_dump(doc) if suffix == ".yaml" else json.dumps(doc))
        files[f"schema_{i}"] = str(path)
    return files
