"""A training output directory (`train --out D`): its lock, its checkpoint and result.json.

- One run at a time: the run holds an exclusive lock on D/.train.lock (flock) from start to
  end; a second run on D is refused at once. The kernel drops the lock when the holder dies,
  even by SIGKILL, so a killed run never leaves D locked.
- The checkpoint is the truth; result.json is derived from it. Every epoch writes the
  checkpoint, then result.json, then reports the epoch (`on_epoch`: progress lines, a
  study's log or a Tune report that copies the directory, which is consistent by then).
  A run resumed after a kill between the two writes finds result.json behind the
  checkpoint: it reports the epochs result.json lacks (marked `replayed`; their report
  never happened) and rewrites result.json from the checkpoint, so the two agree again.
  A kill after result.json and before the report skips that one report; the epoch itself
  is kept and counted (a report cannot be atomic with a file).
- Temporary files of a killed writer (.checkpoint.pt.tmp-*) are removed under the lock;
  a full disk leaves the last good checkpoint, removes its temporary file and says so.

Fault injection for the kill drills: FASTSCALE_TRAIN_KILL_AFTER=checkpoint:N (or result:N)
makes the process SIGKILL itself right after that file of epoch N is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import signal
from pathlib import Path

from spaces.safe_write import OutputError, prepare_dir, remove_stale_temps, write_file

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
LOCK = ".train.lock"
KILL_ENV = "FASTSCALE_TRAIN_KILL_AFTER"


class RunDir:
    """An output directory, locked by this process from open() to close()."""

    def __init__(self, path: Path, lock_fd: int):
        self.path, self._lock_fd = path, lock_fd

    @classmethod
    def open(cls, out_dir: str | Path) -> RunDir:
        path = prepare_dir(out_dir)
        lock_fd = _acquire(path / LOCK)
        for name in (CHECKPOINT, RESULT):
            remove_stale_temps(path, name)
        return cls(path, lock_fd)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the checkpoint (the truth) ---------------------------------------------------------
    def load_checkpoint(self, device) -> dict | None:
        """The checkpoint, or None; an unreadable file raises whatever torch.load raises."""
        import torch

        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        return torch.load(path, map_location=device, weights_only=True)

    def save_checkpoint(self, state: dict) -> None:
        """Write the checkpoint of epoch state['epoch'] (serialized in memory first, so a
        full disk is an OSError of the write, not an error inside torch's zip writer)."""
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        try:
            write_file(self.path / CHECKPOINT, buffer.getbuffer())
        except OutputError as exc:
            raise OutputError(f"{exc}; {self._kept(int(state['epoch']) - 1)}") from None
        _fault_point("checkpoint", int(state["epoch"]))

    # -- result.json (derived) --------------------------------------------------------------
    def reported_epochs(self) -> int:
        """How many epochs result.json holds (0 when it is missing or unreadable)."""
        try:
            data = json.loads((self.path / RESULT).read_text())
            return len(data["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def save_result(self, summary: dict) -> None:
        text = json.dumps(summary, indent=2) + "\n"
        path = self.path / RESULT
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                return  # already derived from this checkpoint: leave the file untouched
        epochs = len(summary["epochs"])
        try:
            write_file(path, text)
        except OutputError as exc:
            raise OutputError(f"{exc}; {self._kept(epochs)}") from None
        _fault_point("result", epochs)

    def catch_up(self, records: list[dict], summary: dict, on_epoch) -> None:
        """After a kill: report the checkpointed epochs result.json lacks, re-derive it."""
        if on_epoch is not None:
            for record in records[self.reported_epochs() :]:
                on_epoch({**record, "replayed": True})
        self.save_result(summary)

    def _kept(self, epoch: int) -> str:
        if epoch <= 0:
            return "no epoch was saved"
        return f"the checkpoint of epoch {epoch} is kept; free space and rerun to resume"


def _acquire(path: Path) -> int:
    """An exclusive flock on `path` (created 0666 & ~umask, never through a symlink)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot lock {str(path)!r}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise OutputError(f"cannot lock {str(path)!r}: {exc.strerror}") from None
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise OutputError(
            f"another run{who} holds output directory {str(path.parent)!r}; "
            "wait for it to finish or pass another --out"
        ) from None
    with contextlib.suppress(OSError):  # the pid is for the message above, not the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # (a full disk may refuse even this)
    return fd


def _fault_point(event: str, epoch: int) -> None:
    """SIGKILL this process right after `event` of `epoch` if FASTSCALE_TRAIN_KILL_AFTER
    asks for it ('checkpoint:2', 'result:1'); a test hook for the kill drills."""
    wanted = os.environ.get(KILL_ENV)
    if wanted and wanted.strip() == f"{event}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)
