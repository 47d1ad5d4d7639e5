"""`fastscale study repair DIR`: rebuild what can be rebuilt, quarantine what cannot.

- `study.json` (missing or damaged) is rebuilt from the options the user restates, after
  checking that every candidate's own record (`candidate.json`) was trained under the
  restated recipe; the damaged file is kept in `quarantine/`.
- A candidate whose `candidate.json` is unreadable, not a candidate, or does not hash to
  its directory name is moved whole to `quarantine/<key>/` with `REASON.txt`.
- A missing, torn or mistyped `status.json` is rebuilt from the checkpoint storage (the
  newest record a trial of that candidate left there), else it reads `pending`.
- `results.parquet` is rebuilt from the records.

Nothing is deleted: a trained result is either kept in place or moved to `quarantine/`.
"""

from __future__ import annotations

import os
import time

from trials.study import checkpoint_storage as storage
from trials.study.damage import candidate_damage, status_damage
from trials.study.define import build_definition
from trials.study.definition import StudyDefinition
from trials.study.results import write_results
from trials.study.store import (
    StudyError,
    StudyStore,
    keyed_config,
)

QUARANTINE = "quarantine"


def _quarantine(store: StudyStore, path, name: str, reason: str) -> str:
    """Move a file or directory (never delete it) to quarantine/, with the reason beside it."""
    target = store.root / QUARANTINE / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(exist_ok=True)
    os.replace(path, target)
    reason_path = (
        target / "REASON.txt" if target.is_dir() else target.with_name(target.name + ".REASON.txt")
    )
    reason_path.write_text(reason + "\n")
    return str(target.relative_to(store.root))


def _all_candidate_dirs(store: StudyStore) -> list[str]:
    base = store.root / "candidates"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def rebuild_definition(store: StudyStore, opts: dict, skip: set = frozenset()) -> StudyDefinition:
    """A definition from the restated options that every remaining candidate agrees with."""

    has_options = any(v is not None for v in opts.values())
    if not has_options:
        raise StudyError(
            f"{store.definition_path} is missing or damaged; restate the study's options "
            "(--space, --regime, -n, --epochs, ... as first given) to rebuild it"
        )
    d = build_definition(opts, store.root)
    want = keyed_config(d.train)
    for key in (k for k in store.keys() if k not in skip):
        got = keyed_config(store.candidate(key)["train"])
        if got != want:
            diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
            raise StudyError(
                f"the restated options do not match candidate {key}'s recipe (differs in "
                f"{', '.join(diff)}); nothing was changed"
            )
    return d


def status_from_storage(key: str, locations: list[str]) -> dict | None:
    """The newest record a trial of `key` left in any of the storages, as a status."""
    best = None
    for root in locations:
        for trial in _trial_dirs(root, key):
            for checkpoint in reversed(storage.checkpoints(trial)):
                rec = storage.read_record(checkpoint)
                if rec is None:
                    continue
                stamp = rec.get("finished") or rec.get("started") or ""
                if best is None or stamp > best[0]:
                    best = (stamp, checkpoint, rec)
                break
    if best is None:
        return None
    _, checkpoint, rec = best
    status = rec.get("status") if rec.get("status") in ("done", "failed") else "pending"
    out = {k: v for k, v in rec.items() if k not in ("status", "attempt")}
    out.update(status=status, attempts=int(rec.get("attempt") or 1))
    out["failures"] = 1 if status == "failed" else 0
    if storage.has_file(checkpoint, storage.STATE) or storage.has_file(checkpoint, storage.WEIGHTS):
        out["checkpoint"] = checkpoint
    out["repaired_from"] = checkpoint
    return out


def _trial_dirs(root: str, key: str) -> list[str]:
    """<root>/<experiment>/<key>-<trial> directories."""
    import pyarrow.fs

    try:
        fs, path = storage.resolve(root)
        exps = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except (OSError, StudyError):
        return []
    out = []
    for exp in exps:
        if exp.type != pyarrow.fs.FileType.Directory:
            continue
        for trial in fs.get_file_info(pyarrow.fs.FileSelector(exp.path, allow_not_found=True)):
            if trial.type == pyarrow.fs.FileType.Directory and trial.base_name.startswith(
                f"{key}-"
            ):
                out.append(storage.join(root, exp.base_name, trial.base_name))
    return out


def repair(root, opts: dict, checkpoint_storage: str | None = None) -> dict:
    """Repair the study in `root` (see the module doc); returns what was done."""

    store = StudyStore(root)
    if not store.root.is_dir():
        raise StudyError(f"{store.root} does not exist or is not a directory")
    done: dict[str, list] = {"quarantined": [], "statuses": [], "definition": []}
    with store.lock():
        damaged = {
            k: why for k in _all_candidate_dirs(store) if (why := candidate_damage(store, k))
        }
        definition = None
        try:
            store.check()
        except StudyError as exc:  # checked before anything moves: a refusal changes nothing
            definition = rebuild_definition(store, opts, skip=set(damaged)), str(exc)
        for key, why in damaged.items():
            where = _quarantine(store, store.cdir(key), key, why)
            done["quarantined"].append({"key": key, "reason": why, "moved_to": where})
        if definition is not None:
            d, exc = definition
            if store.definition_path.exists():
                _quarantine(store, store.definition_path, "study.json", exc)
            store.create_definition(d.to_dict())
            done["definition"].append("study.json rebuilt from the restated options")
        locations = [storage.storage_location(checkpoint_storage, store.root)]
        for key in store.keys():
            why = status_damage(store, key)
            path = store.cdir(key) / "status.json"
            if why is None and path.exists():
                continue
            if why:
                _quarantine(store, path, f"{key}.status.json", why)
            rec = status_from_storage(key, locations) or {
                "status": "pending",
                "attempts": 0,
                "failures": 0,
                "epochs_done": 0,
            }
            store.write_status(key, rec)
            store.log(key, f"repair: status rebuilt as {rec['status']} ({why or 'missing'})")
            done["statuses"].append({"key": key, "status": rec["status"], "why": why or "missing"})
        write_results(store)
    return done


def summary(done: dict) -> list[str]:
    lines = list(done["definition"])
    for q in done["quarantined"]:
        lines.append(f"quarantined {q['key']}: {q['reason']} -> {q['moved_to']}")
    for s in done["statuses"]:
        lines.append(f"status of {s['key']} rebuilt as {s['status']} ({s['why']})")
    return lines or ["nothing to repair"]
