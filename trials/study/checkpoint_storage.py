"""Where trial checkpoints live: Ray Tune's `storage_path`, a directory or a pyarrow URI.

The study directory belongs to the driver; trials never open it. They hand their
checkpoints to Tune (`tune.report(..., checkpoint=...)`), which copies them to this storage
before the report returns. The default is `<study>/ray` (right on one machine and on NFS);
`--checkpoint-storage` points it at a directory every node can reach or at a URI such as
`s3://bucket/prefix` (any filesystem pyarrow resolves, query options included:
`s3://b/p?endpoint_override=host:9000&scheme=http`).

Every location is kept as a URI string (a local one as an absolute path), so a record in the
study store says where its checkpoint is whatever storage a later resume is given.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from spaces.safe_write import OutputError, check_output_dir
from trials.study.store import StudyError

CHECKPOINT_PREFIX = "checkpoint_"  # Tune's checkpoint directory names: checkpoint_000003
RECORD = "record.json"  # the trial's own record, inside every checkpoint it reports
WEIGHTS = "weights.pt"  # final weights of a finished trial (kept with --keep-weights)
STATE = "checkpoint.pt"  # trials.training.train's resumable state (model, EMA, optimizer, epoch)


def is_uri(location: str) -> bool:
    return "://" in str(location)


def join(location: str, *parts: str) -> str:
    """location/part/... for an absolute path or a URI (its query string kept at the end)."""
    if not is_uri(location):
        return str(Path(location, *parts))
    s = urlsplit(location)
    return urlunsplit(s._replace(path=posixpath.join(s.path or "/", *parts)))


def resolve(location: str):
    """(pyarrow filesystem, path on it) of a location; one line when it cannot be used."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(str(location))
    except Exception as exc:  # unknown scheme, filesystem not built in, bad credentials...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StudyError(f"checkpoint storage {redact(location)} cannot be used: {first}") from None


def redact(location: str) -> str:
    """The location without a password or a secret query value (safe to print and store);
    anything else is left exactly as given."""
    text = str(location)
    if not is_uri(text):
        return text
    parts = urlsplit(text)
    if parts.password:
        text = text.replace(f":{parts.password}@", ":***@", 1)
    for item in filter(None, parts.query.split("&")):
        name = item.split("=", 1)[0]
        if any(word in name.lower() for word in ("secret", "password", "token", "key")):
            text = text.replace(item, f"{name}=***", 1)
    return text


def storage_location(option: str | None, study_root: Path) -> str:
    """The storage a run uses: the option (a relative path made absolute) or <study>/ray."""
    if not option:
        return str(study_root / "ray")
    return option if is_uri(option) else str(Path(option).expanduser().resolve())


def check_writable(location: str) -> None:
    """Prove the storage usable before anything is created: resolve it and, where it exists,
    write and delete one probe file (a local directory that does not exist yet only needs a
    writable parent; Tune creates it)."""
    if not is_uri(location):
        try:
            check_output_dir(location, "checkpoint storage")
        except OutputError as exc:
            raise StudyError(str(exc)) from None
        return
    fs, root = resolve(location)
    probe = posixpath.join(root, f".fastscale-probe-{os.getpid()}")
    try:
        with fs.open_output_stream(probe) as fh:
            fh.write(b"")
        fs.delete_file(probe)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StudyError(
            f"checkpoint storage {redact(location)} is not writable: {first}"
        ) from None


def checkpoints(trial_location: str) -> list[str]:
    """The trial's checkpoint locations, oldest first ([] when it has none or is gone)."""
    import pyarrow.fs

    fs, path = resolve(trial_location)
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except OSError:
        return []
    names = sorted(
        i.base_name
        for i in infos
        if i.type == pyarrow.fs.FileType.Directory and i.base_name.startswith(CHECKPOINT_PREFIX)
    )
    return [join(trial_location, n) for n in names]


def read_record(checkpoint: str) -> dict | None:
    """The trial record inside a checkpoint, or None when it is missing or torn."""
    fs, path = resolve(checkpoint)
    try:
        with fs.open_input_stream(posixpath.join(path, RECORD)) as fh:
            rec = json.loads(fh.read().decode())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def has_file(checkpoint: str, name: str) -> bool:
    import pyarrow.fs

    fs, path = resolve(checkpoint)
    try:
        return fs.get_file_info(posixpath.join(path, name)).type == pyarrow.fs.FileType.File
    except OSError:
        return False


def state_complete(checkpoint: str, record: dict | None) -> bool:
    """Whether a checkpoint holds the whole resumable state its record describes: a trial
    killed while its checkpoint was being copied into storage leaves a shorter file (or
    none). Records without `state_bytes` (older trials) only need the file to be there."""
    import pyarrow.fs

    if record is None:
        return False
    fs, path = resolve(checkpoint)
    try:
        info = fs.get_file_info(posixpath.join(path, STATE))
    except OSError:
        return False
    expected = record.get("state_bytes")
    return info.type == pyarrow.fs.FileType.File and expected in (None, info.size)


def delete(location: str) -> None:
    """Remove a checkpoint or trial directory; a missing one is fine."""
    fs, path = resolve(location)
    try:
        fs.delete_dir(path)
    except (OSError, FileNotFoundError):
        pass


def size_bytes(location: str) -> int:
    """Total bytes under a location (0 when it does not exist)."""
    import pyarrow.fs

    fs, path = resolve(location)
    try:
        infos = fs.get_file_info(
            pyarrow.fs.FileSelector(path, recursive=True, allow_not_found=True)
        )
    except OSError:
        return 0
    return sum(i.size or 0 for i in infos if i.type == pyarrow.fs.FileType.File)
