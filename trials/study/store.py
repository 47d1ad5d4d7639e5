"""The study store: a directory that is the one authoritative record of a study.

Layout (docs/studies.md)::

    study.json                      definition + magic/version (a foreign dir is refused)
    candidates/<key>/candidate.json spec + train config, written once, never changed
    candidates/<key>/tags.json      label sets (first one names the result columns)
    candidates/<key>/status.json    pending|running|done|stopped|failed, attempts, result, where
                                    the attempt's trial and newest checkpoint live (atomic)
    candidates/<key>/log.txt        the candidate's log (attempts, epochs, tracebacks)
    results.parquet                 derived from the per-candidate files; rebuilt at will
    optuna.db, ray/, logs/          Optuna storage, the default checkpoint storage, driver logs

Only the driver writes here; trials hand their results and checkpoints to Ray Tune, whose
storage (ray/ or --checkpoint-storage) holds the checkpoints (trials.study.records). Tune's
experiment state is never read back: its restore has known holes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from spaces.errors import FastscaleError
from spaces.safe_write import write_file

MAGIC = "fastscale-study"
VERSION = 1
# TrainConfig fields that change how a run executes, not what it computes: not in the key.
# `threads` changes a CPU run's arithmetic (reduction order), so a study fixes it in its
# definition and it is part of the key; only an unset one (None, studies made before this
# rule, or API callers leaving it to --cpus-per-trial) is left out, keeping their keys.
RUNTIME_KEYS = ("device", "num_workers")
LOCK = ".lock"


class StudyError(FastscaleError):
    """A study directory that cannot be used as asked (foreign, corrupted, conflicting)."""


class StudyBusy(StudyError):
    """Another driver holds the study's lock."""


class DamagedRecord(StudyError):
    """A candidate's record holds values no fastscale wrote (`study repair` rebuilds it)."""


@dataclass(frozen=True)
class Candidate:
    """One model to train in a study; `tags` are free-form labels that become result columns."""

    spec: object
    tags: dict = field(default_factory=dict)


def canonical(obj) -> str:
    """Stable JSON (sorted keys, no spaces) so equal dicts hash equal."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def keyed_config(train: dict) -> dict:
    return {
        k: v
        for k, v in train.items()
        if k not in RUNTIME_KEYS and not (k == "threads" and v is None)
    }


def candidate_key(spec_dict: dict, train: dict) -> str:
    """Short hash of the spec and the training recipe: the candidate's identity."""
    text = canonical({"spec": spec_dict, "train": keyed_config(train)})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, obj) -> None:
    """Write-then-rename through the project's one safe-write rule (docs/outputs.md): a
    reader (or a crash) sees the old file or the new one, never half; mode 0666 & ~umask."""
    write_file(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path):
    with open(path) as fh:
        return json.load(fh)


class StudyStore:
    """Read and write one study directory (the driver's; trials never open it)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    # -- layout ---------------------------------------------------------------------------
    @property
    def definition_path(self) -> Path:
        return self.root / "study.json"

    def cdir(self, key: str) -> Path:
        return self.root / "candidates" / key

    def log_path(self, key: str) -> Path:
        return self.cdir(key) / "log.txt"

    @property
    def ray_dir(self) -> Path:
        return self.root / "ray"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.root / 'optuna.db'}"

    # -- definition -----------------------------------------------------------------------
    def exists(self) -> bool:
        return self.definition_path.exists()

    def check(self) -> dict:
        """The stored definition; a dir that is not a study, or a damaged one, is refused."""
        if not self.root.is_dir():
            raise StudyError(f"{self.root} does not exist or is not a directory")
        if not self.definition_path.exists():
            raise StudyError(f"{self.root} is not a study directory (no study.json)")
        try:
            data = read_json(self.definition_path)
        except (OSError, json.JSONDecodeError) as exc:
            raise StudyError(
                f"{self.definition_path} is corrupted ({type(exc).__name__}); nothing was changed"
            ) from None
        if not isinstance(data, dict) or data.get("magic") != MAGIC:
            raise StudyError(
                f"{self.definition_path} is not a fastscale study definition; nothing was changed"
            )
        if data.get("version") != VERSION:
            raise StudyError(
                f"{self.root} is a study of format version {data.get('version')}; "
                f"this fastscale reads version {VERSION}"
            )
        return data.get("definition", {})

    def is_blank(self) -> bool:
        """No directory yet, or an empty one (a lock file left by a driver counts as empty)."""
        if not self.root.exists():
            return True
        return self.root.is_dir() and all(p.name == LOCK for p in self.root.iterdir())

    def create(self, definition: dict) -> None:
        """Start a study in an empty (or new) directory; never adopts a non-empty foreign dir."""
        if self.root.exists() and not self.root.is_dir():
            raise StudyError(f"{self.root} exists and is not a directory")
        if not self.is_blank():
            raise StudyError(
                f"{self.root} is not empty and holds no study.json; use a new or empty --out"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "candidates").mkdir(exist_ok=True)
            (self.root / "logs").mkdir(exist_ok=True)
        except OSError as exc:
            raise StudyError(f"cannot create study directory {self.root}: {exc.strerror}") from None
        self.create_definition(definition)

    def create_definition(self, definition: dict) -> None:
        write_json_atomic(
            self.definition_path,
            {"magic": MAGIC, "version": VERSION, "created": now(), "definition": definition},
        )

    def open(self, definition: dict | None = None) -> dict:
        """The stored definition, creating the study first when the directory is new/empty."""
        if self.exists() or not self.is_blank():
            return self.check()
        self.create(definition or {"source": "api"})
        return self.check()

    # -- lock -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, create: bool = False):
        """One driver per study at a time (flock: released by the kernel if the driver dies).

        `create`: make the directory first (a new study is created under its lock, so a
        second driver racing on the same new directory is told that another driver runs it).
        """
        import fcntl

        path = self.root / LOCK
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")
        except OSError as exc:
            raise StudyError(f"cannot open study directory {self.root}: {exc.strerror}") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise StudyBusy(
                f"study {self.root} is being run by another driver ({holder}); "
                "wait for it or stop it first"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def driver_running(self) -> bool:
        """Whether a driver holds the study's lock now (a read-only probe)."""
        import fcntl

        try:
            fh = open(self.root / LOCK)
        except OSError:
            return False
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    # -- candidates -----------------------------------------------------------------------
    def add(self, spec, train: dict, tags: dict | None = None) -> str:
        """Register a candidate (idempotent); returns its key. Existing files are kept."""
        spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        key = candidate_key(spec_dict, train)
        d = self.cdir(key)
        if not (d / "candidate.json").exists():
            write_json_atomic(
                d / "candidate.json",
                {"key": key, "spec": spec_dict, "train": train, "created": now()},
            )
        tags = dict(tags or {})
        sets = self.tag_sets(key)
        if tags and tags not in sets:
            write_json_atomic(d / "tags.json", [*sets, tags])
        elif not (d / "tags.json").exists():
            write_json_atomic(d / "tags.json", [tags] if tags else [])
        return key

    def keys(self) -> list[str]:
        base = self.root / "candidates"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "candidate.json").exists())

    def candidate(self, key: str) -> dict:
        try:
            return read_json(self.cdir(key) / "candidate.json")
        except (OSError, json.JSONDecodeError) as exc:
            raise StudyError(f"candidate {key} in {self.root} is unreadable: {exc}") from None

    def tag_sets(self, key: str) -> list[dict]:
        try:
            sets = read_json(self.cdir(key) / "tags.json")
        except (OSError, json.JSONDecodeError):
            return []
        return sets if isinstance(sets, list) else []

    def status(self, key: str) -> dict:
        """The candidate's record; a missing or torn file reads as pending (never as done).

        A readable record with values no fastscale wrote raises DamagedRecord.
        """
        try:
            rec = read_json(self.cdir(key) / "status.json")
        except (OSError, json.JSONDecodeError):
            rec = None
        if rec is None:
            rec = {"status": "pending", "attempts": 0, "failures": 0, "epochs_done": 0}
        from spaces.schema import validate  # pydantic: kept off `fastscale --help`
        from trials.study.record_schema import StatusRecord

        validate(StatusRecord, rec, f"status.json of candidate {key}", DamagedRecord)
        for name in ("attempts", "failures", "epochs_done"):
            rec.setdefault(name, 0)
        return rec

    def write_status(self, key: str, record: dict) -> None:
        write_json_atomic(self.cdir(key) / "status.json", {**record, "updated": now()})

    def log(self, key: str, line: str) -> None:
        path = self.log_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(f"{now()} {line.rstrip()}\n")

    def record_crash(self, key: str, message: str, attempt: int | None = None) -> dict:
        """A trial that died without writing its own record (worker killed, OOM, node lost)."""
        rec = self.status(key)
        if rec["status"] != "running" or (attempt is not None and rec["attempts"] != attempt):
            return rec
        rec = {**rec, "status": "failed", "failures": rec["failures"] + 1, "failure": message}
        self.write_status(key, rec)
        self.log(key, f"attempt {rec['attempts']} died: {message}")
        return rec

    def is_finished(self, key: str, max_failures: int) -> bool:
        """Done, stopped early (trials.study.early_stop), or failed `max_failures` times: a
        resume will not run it again."""
        rec = self.status(key)
        return rec["status"] in ("done", "stopped") or (
            rec["status"] == "failed" and rec["failures"] >= max_failures
        )
