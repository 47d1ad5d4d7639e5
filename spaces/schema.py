"""The one schema layer every file kind goes through (docs/schemas.md).

Pydantic v2 does the type work: strict types (no silent "3" -> 3, no true -> 1, no 12.0 ->
12), finite numbers, required and unknown fields, one structured error per bad field. This
module turns that into the project's one-line message, "<file>: <field.path>: <what was
wrong>; <what is allowed>", naming a near miss for an unknown key ("did you mean ...").

Two ways in: `Schema` subclasses for file formats whose shape differs from the in-memory
object (a compare preset, compare.json, the study records), and `check_dataclass` for a
mapping read straight into a frozen dataclass (spec files, runtime profiles, the training
recipe, study.json's definition), whose annotations are the schema; a field may declare its
range there, `Annotated[float, annotated_types.Ge(0)]`, without importing pydantic. The frozen dataclasses stay the in-memory objects; the ranges
that depend on other fields stay in their `__post_init__`.

Pydantic costs ~100 ms to import, so the modules on the `fastscale plan`/`--help` path import
this one inside their loaders (docs/architecture.md lists it with the heavy imports).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, create_model

from spaces.errors import FastscaleError

STRICT = ConfigDict(
    strict=True,  # a string is never a number nor a bool a count (12.0 is an int: `Int`)
    extra="forbid",
    allow_inf_nan=False,
    arbitrary_types_allowed=True,
    frozen=True,
)
# pydantic error type -> what is allowed, in the words of our messages
ALLOWED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping of fields",
    "model_type": "a mapping of fields",
    "dataclass_type": "a mapping of fields",
    "finite_number": "a finite number",
    "none_required": "null",
}


SHAPE = ("missing", "extra_forbidden")
DATACLASS_OF: dict = {}  # schema made by dataclass_schema -> its dataclass


def _integral(value):
    """13.0 -> 13: an integral float is an integer (pandas and some JSON writers write them
    so); 12.5, "13" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_integral)]

BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


class Schema(BaseModel):
    """A file format: strict types, finite numbers, no unknown keys."""

    model_config = STRICT


def _path(loc: tuple) -> str:
    """('train', 'epochs') -> train.epochs; ('seeds', 2) -> seeds[2]; union branch tags
    (pydantic names the tried type, e.g. 'int' or 'list[int]') are left out."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_type_tag(part):
            out += f".{part}" if out else str(part)
    return out


def _is_type_tag(part: str) -> bool:
    return (
        part in ("int", "float", "str", "bool", "none")
        or "[" in part
        or part.startswith(("function-", "constrained-", "lax-", "json-"))
    )


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known(schema, loc: tuple) -> list[str]:
    """The field names allowed where an unknown key `loc[-1]` was found."""
    node = schema  # a Schema class, or an annotation still to be opened
    for part in loc[:-1]:
        fields = getattr(node, "model_fields", None)
        if fields is not None:
            if part not in fields:
                return []
            node = fields[part].annotation
            continue
        node = _inner(node)  # a key of a mapping or an index of a list: its value type
        if node is None:
            return []
    model = node if getattr(node, "model_fields", None) is not None else _model_of(node)
    return list(getattr(model, "model_fields", {}))


def _inner(annotation):
    """The value type of `dict[K, V]` / `list[V]` inside an annotation (unions opened)."""
    for arg in (annotation, *typing.get_args(annotation)):
        origin = typing.get_origin(arg)
        if origin is dict:
            return typing.get_args(arg)[1]
        if origin is list:
            return typing.get_args(arg)[0]
    return None


def _model_of(annotation):
    """The Schema class inside an annotation such as `Finalists | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def describe(error: dict, schema=None) -> str:
    """One pydantic error as '<field.path>: <what>'."""
    kind, loc = error["type"], tuple(error["loc"])
    where = _path(loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = _known(schema, loc) if schema is not None else []
        near = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        allowed = f"; allowed: {', '.join(known)}" if known else ""
        parent = _path(loc[:-1])
        return f"{parent + ': ' if parent else ''}unknown field {name!r}{hint}{allowed}"
    if kind == "missing":
        return f"missing field {where!r}"
    if kind == "value_error":  # a validator's own message says what is allowed
        text = str(error["ctx"]["error"])
        return f"{where}: {text}" if where and not text.startswith(where) else text
    if kind == "literal_error":
        return f"{where} must be one of {error['ctx']['expected']}, got {_shown(error['input'])}"
    if kind in BOUNDS:
        op, key = BOUNDS[kind]
        bound = error["ctx"][key]
        bound = f"{bound:g}" if isinstance(bound, float) else bound  # 0.0 -> 0
        return f"{where} must be {op} {bound}, got {_shown(error['input'])}"
    if kind in ALLOWED:
        return f"{where} must be {ALLOWED[kind]}, got {_shown(error['input'])}"
    msg = error["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    return f"{where} {msg}, got {_shown(error['input'])}"


def message(exc: ValidationError, what: str, schema=None) -> str:
    """The first error, in one line, with the count of the others: a missing or unknown
    field first (the shape of the file), then the first wrong value."""
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] not in SHAPE)
    more = len(errors) - 1
    tail = f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else ""
    return f"{what}: {describe(errors[0], schema)}{tail}"


def validate(schema: type[Schema], data, what: str, error: type[Exception] = FastscaleError):
    """`data` as an instance of `schema`, or `error` with the one-line message."""
    if not isinstance(data, dict):
        raise error(f"{what} must be a mapping of fields, got {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise error(message(exc, what, schema)) from None


def _file_type(hint):
    """The annotation a file may satisfy: a list where the dataclass holds a tuple (JSON
    and YAML have no tuples), recursively through unions."""
    if typing.get_origin(hint) is Annotated:  # a range declared on the dataclass field
        inner, *meta = typing.get_args(hint)
        return Annotated[(_file_type(inner), *meta)]
    if hint is int:
        return Int
    if hint is tuple:
        return list | tuple
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _file_type(args[0])
            return list[item] | tuple[item, ...]
        return list | hint
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_file_type(a) for a in typing.get_args(hint))]  # noqa: UP007
    return hint


@functools.cache
def dataclass_schema(cls, order: tuple = (), required: tuple | None = None) -> type[Schema]:
    """A Schema with the dataclass's init fields (in `order` first, as messages list them),
    their annotated types and defaults; `required` overrides which fields a file must give."""
    hints = typing.get_type_hints(cls, include_extras=True)
    rank = {name: i for i, name in enumerate(order)}
    fields = {}
    for f in sorted(dataclasses.fields(cls), key=lambda f: rank.get(f.name, len(rank))):
        if not f.init:
            continue
        if required is not None and f.name in required:
            default = ...
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = None  # the dataclass builds it; the file may leave it out
        else:
            default = ...
        fields[f.name] = (_file_type(hints[f.name]), default)
    model = create_model(f"{cls.__name__}File", __base__=Schema, **fields)
    DATACLASS_OF[model] = cls
    return model


def check_dataclass(cls, data, what: str, error: type[Exception], order=(), required=None):
    """Check `data`'s keys and types against `cls`'s annotations (the values are kept as
    given: an int stays an int, so stored keys and hashes do not change)."""
    req = None if required is None else tuple(required)
    validate(dataclass_schema(cls, tuple(order or ()), req), data, what, error)
