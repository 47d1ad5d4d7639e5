"""Every bad or edge-case input of the table in tests/fuzz_cli.py gets one clean line (exit 2,
`fastscale: error: ...`) or a correct result: no traceback, hang, memory blow-up, silently
accepted bad input or multi-line answer. Each case runs in a forked child with a timeout and
a memory cap (see tests/fuzz_cli.py)."""

from __future__ import annotations

import pytest

from tests.fuzz_cli import cases, counts, run_table


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    # the timeout only tells a hang from an answer: a case that imports torch on a machine
    # loaded by other test runs can take 20 s, a hang never ends; 120 s keeps a real hang
    # failing without a slow machine failing the table
    return run_table(tmp_path_factory.mktemp("fuzz"), timeout=120.0)


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


def _schema_classes() -> set:
    """Every Schema subclass the project defines (its schema modules imported here)."""
    import spaces.space_schema  # noqa: F401
    import trials.compare.meta  # noqa: F401
    import trials.compare.preset_schema  # noqa: F401
    import trials.study.record_schema  # noqa: F401
    from spaces.schema import Schema

    found, todo = set(), [Schema]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] in ("spaces", "planner", "trials"):
                found.add(sub)
            todo.append(sub)
    return found


def test_every_schema_field_has_fuzz_cases_and_the_schema_refuses_each():
    """A field added to a schema gets cases the day it is added; a schema with no file kind
    in tests/fuzz_schemas.py fails here."""
    from spaces.errors import FastscaleError
    from spaces.schema import validate
    from tests.fuzz_schemas import _get, generated, kinds, sections

    table = kinds()
    cases = {(k, where, what) for k, where, what, _ in generated()}
    reached = set()
    for kind, (schema, doc, _, _) in table.items():
        validate(schema, doc, kind)  # the good document passes: the mutation is what fails
        todo = [(schema, ())]
        while todo:
            model, path = todo.pop()
            reached.add(model)
            for name, field in model.model_fields.items():
                where = ".".join(map(str, (*path, name)))
                assert (kind, where, "wrong type") in cases, f"{kind}: no case for {where}"
                if field.is_required():
                    assert (kind, where, "missing") in cases, f"{kind}: {where} never missing"
                value = _get(doc, (*path, name))
                todo += [(sub, (*path, name, *k)) for sub, k in sections(field.annotation, value)]
    for kind, where, what, mutated in generated():
        schema = table[kind][0]
        with pytest.raises(FastscaleError):
            validate(schema, mutated, f"{kind} {where}: {what}")
    from spaces.schema import DATACLASS_OF

    named = {c for c in _schema_classes() if c not in DATACLASS_OF}  # dataclasses: below
    assert named <= reached, (
        f"schemas without fuzz cases: {sorted(c.__name__ for c in named - reached)}"
    )
    from planner.profiles import RuntimeProfile
    from spaces.specs import FAMILIES
    from trials.study.definition import StudyDefinition
    from trials.training.recipe import TrainConfig

    read = {*FAMILIES.values(), RuntimeProfile, StudyDefinition, TrainConfig}  # from files
    fuzzed = {DATACLASS_OF.get(schema) for schema, *_ in table.values()}
    assert read <= fuzzed, f"no fuzz kind for {sorted(c.__name__ for c in read - fuzzed)}"
