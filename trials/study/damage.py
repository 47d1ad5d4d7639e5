"""Damage checks of a study's candidate records: what `study repair` fixes, and what every
reader of the store skips (with one warning line) until it is repaired (trials.study.repair)."""

from __future__ import annotations

import sys

from trials.study.store import DamagedRecord, StudyStore, candidate_key, read_json


def candidate_damage(store: StudyStore, key: str) -> str | None:
    """Why a candidate directory cannot be used, or None."""
    try:
        cand = read_json(store.cdir(key) / "candidate.json")
    except (OSError, ValueError) as exc:
        return f"candidate.json is unreadable ({type(exc).__name__})"
    from spaces.schema import validate  # pydantic: kept off `fastscale --help`
    from trials.study.record_schema import CandidateRecord

    try:
        validate(CandidateRecord, cand, "candidate.json", DamagedRecord)
    except DamagedRecord as exc:
        return str(exc)
    if candidate_key(cand["spec"], cand["train"]) != key:
        return "candidate.json does not hash to its directory name (edited or misplaced)"
    return None


def status_damage(store: StudyStore, key: str) -> str | None:
    """Why a candidate's status.json must be rebuilt, or None (missing reads as pending)."""
    path = store.cdir(key) / "status.json"
    if not path.exists():
        return None
    try:
        rec = read_json(path)
    except (OSError, ValueError) as exc:
        return f"status.json is unreadable ({type(exc).__name__})"
    if not isinstance(rec, dict):
        return "status.json holds no record"
    try:
        store.status(key)
    except DamagedRecord as exc:
        return str(exc)
    return None


def usable_keys(store: StudyStore, keys: list[str], warn=None) -> list[str]:
    """`keys` without the damaged candidates; one warning line for each one left out."""
    out = []
    for key in keys:
        why = candidate_damage(store, key) or status_damage(store, key)
        if why is None:
            out.append(key)
            continue
        line = (
            f"fastscale: warning: skipping damaged candidate {key} ({why}); "
            f"`fastscale study repair {store.root}` rebuilds or quarantines it"
        )
        (warn or (lambda text: print(text, file=sys.stderr)))(line)
    return out
