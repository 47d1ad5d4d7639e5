"""Writing output files safely: the one place every command's `--out` goes through.

The rules, for every file fastscale writes (docs/outputs.md):

- The target must be a regular file or not exist. A directory, a device (`/dev/full`), a
  FIFO or a socket is refused, and so is a symbolic link as the last component: replacing a
  link silently cuts it, writing through it writes somewhere the user did not name. A link
  in a parent directory is followed as usual.
- The new contents go to a temporary file in the target's directory, created with O_EXCL
  and O_NOFOLLOW (a planted symlink or an existing file is never opened), flushed to disk
  with fsync and renamed over the target: a reader or a crash sees the old file or the new
  one, never half of one. On any failure (a full disk, say) the temporary file is removed.
- Files get mode 0666 & ~umask, like any shell redirection (0644 under umask 022), and
  directories 0777 & ~umask.
- Failures raise OutputError: one line that names the path and the reason.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from spaces.errors import FastscaleError

TEMP_MARK = ".tmp-"  # temporary files are ".<name>.tmp-<pid>-<random>" beside their target
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class OutputError(FastscaleError):
    """An output path that must not or cannot be written; the message is one line."""


def check_target(path: str | Path) -> Path:
    """The path, if writing a file there is allowed (absent or a regular file); else raise."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    if stat.S_ISLNK(mode):
        raise OutputError(
            f"refusing to write {str(path)!r}: it is a symbolic link "
            "(name the file it points to, or another path)"
        )
    if stat.S_ISDIR(mode):
        raise OutputError(f"refusing to write {str(path)!r}: it is a directory; name a file")
    if not stat.S_ISREG(mode):
        raise OutputError(
            f"refusing to write {str(path)!r}: it is not a regular file "
            "(a device, FIFO or socket); name a regular file"
        )
    return path


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Prove a directory can be created or written, before any work, leaving no trace: the
    path is a directory or absent, and its nearest existing ancestor takes (and loses) one
    probe file. Nothing is created; `prepare_dir` creates it when the work starts."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
    if existing is None or not existing.is_dir():
        raise OutputError(
            f"{what} {str(path)!r} is not writable: {str(existing)!r} is not a directory"
        )
    try:
        fd, probe = _create_temp(existing / ".write-test")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"{what} {str(path)!r} is not writable ({str(existing)!r}: {exc.strerror})"
        ) from None
    return path


def check_output_file(path: str | Path) -> Path:
    """`check_target`, and the directory it goes in can be created or written (no trace)."""
    check_output_dir(Path(path).parent, "the directory of")
    return check_target(path)


def prepare_dir(path: str | Path) -> Path:
    """Create an output directory (and its parents) and prove it writable; never deletes.

    The proof is a temporary file made the same safe way as any output (O_EXCL, O_NOFOLLOW),
    so a planted `.write-test-…` symlink cannot redirect it.
    """
    path = Path(path)
    try:
        if os.path.lexists(path) and not path.is_dir():
            raise NotADirectoryError(20, "it exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = _create_temp(path / ".write-test")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write to directory {str(path)!r}: {exc.strerror}") from None
    return path


@contextlib.contextmanager
def open_for_write(path: str | Path, *, text: bool = False) -> Iterator[IO]:
    """A file object whose contents replace `path` atomically when the block ends cleanly.

    If the block raises, or the write fails, the target is left as it was and the
    temporary file is removed; OSError (ENOSPC, EACCES, ...) becomes OutputError.
    """
    path = check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(path.parent)


def write_file(path: str | Path, data: str | bytes) -> Path:
    """Replace `path` with `data` (str is written as UTF-8), atomically; see the module doc."""
    with open_for_write(path, text=isinstance(data, str)) as fh:
        fh.write(data)
    return Path(path)


def remove_stale_temps(directory: str | Path, name: str) -> list[Path]:
    """Remove temporary files of `name` left in `directory` by a killed writer.

    Only call this while holding the directory's lock (no other writer can be mid-write).
    """
    removed = []
    for tmp in Path(directory).glob(f".{name}{TEMP_MARK}*"):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(tmp).st_mode):
                tmp.unlink()
                removed.append(tmp)
    return removed


def plain_name(name: str, what: str) -> str:
    """`name` if it can be one path component inside a directory; else raise.

    Names become default output paths (runs/compare-NAME): a name with a separator, '..'
    or a NUL byte could write outside the directory it is meant for.
    """
    bad = not name or name in (".", "..") or any(c in name for c in ("/", "\\", "\0"))
    if bad or name.startswith("."):
        raise OutputError(
            f"{what} {name!r} cannot name a directory (no '/', '\\', leading '.' or '..'); "
            "pass --out DIR"
        )
    return name


def _create_temp(target: Path) -> tuple[int, str]:
    """A new file beside `target` (mode 0666 & ~umask), never one that existed."""
    stem = target.name[:200]  # the temporary name must fit NAME_MAX (255) too
    while True:
        tmp = target.with_name(f".{stem}{TEMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")
        try:
            return os.open(tmp, _CREATE, 0o666), str(tmp)
        except FileExistsError:
            continue


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some filesystems cannot sync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
