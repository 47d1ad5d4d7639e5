"""The per-candidate records of a study directory (docs/studies.md), read back through
spaces.schema: what a damaged record holds is named in one line, and `study repair`
rebuilds or quarantines it (trials.study.damage)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from spaces.schema import STRICT, Int, Schema

STATUSES = ("pending", "running", "done", "stopped", "failed")


class CandidateRecord(Schema):
    """candidate.json: written once, never changed; its key hashes spec and train."""

    key: str
    spec: dict[str, Any]
    train: dict[str, Any]
    created: str | None = None


class StatusRecord(Schema):
    """status.json: the driver's counters are checked; the result fields a trial hands
    back (trials.study.records.RESULT_FIELDS) pass as written (a diverged run's NaN too)."""

    model_config = ConfigDict(**{**STRICT, "extra": "allow"})

    status: Literal[STATUSES]
    attempts: Int = Field(0, ge=0)
    failures: Int = Field(0, ge=0)
    epochs_done: Int = Field(0, ge=0)
