"""Stop exactly the Ray processes that belong to one Ray temp dir, and nothing else.

`ray stop --force` kills every raylet, GCS, worker and any process whose command line
mentions `monitor.py` on the host, for all users when run as root: other people's
clusters included. A test run or a benchmark instead gives its Ray a private temp dir
(RAY_TMPDIR=DIR, so sessions live in DIR/ray/session_*) and afterwards stops only the
processes tied to DIR: those whose command line names it, whose open files lie in it, or
that inherited RAY_TMPDIR=DIR — including the agents and workers a SIGKILLed driver
leaves behind. The caller and its ancestors are never touched.

    python -m trials.study.ray_reap DIR [--remove]   # what scripts/test.sh runs on exit
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def tied_processes(temp_dir: str | Path) -> dict[int, str]:
    """{pid: command line} of the processes tied to `temp_dir` (see the module doc)."""
    roots = sorted({os.path.abspath(temp_dir), os.path.realpath(temp_dir)})
    # the path as a whole component: /tmp/a must not match /tmp/ab
    named = re.compile("|".join(re.escape(r) for r in roots) + r"(?=[/\s'\",;:]|$)")
    spared = _self_and_ancestors()
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if named.search(cmdline) or _is_tied(entry, roots):
                found[int(entry.name)] = cmdline.strip()
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


def reap(temp_dir: str | Path, grace_s: float = 3.0) -> dict[int, str]:
    """SIGTERM the processes tied to `temp_dir`, SIGKILL what is left after `grace_s`;
    return {pid: command line} of those stopped."""
    stopped: dict[int, str] = {}
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 1.0)):
        found = tied_processes(temp_dir)
        for pid in found:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
            stopped.setdefault(pid, found[pid])
        deadline = time.monotonic() + wait
        while found and time.monotonic() < deadline:
            found = {p: c for p, c in found.items() if _alive(p)}
            time.sleep(0.1)
        if not found:
            break
    return stopped


def _is_tied(entry: Path, roots: list[str]) -> bool:
    """Inherited RAY_TMPDIR=root, or an open file under root."""
    try:
        environ = set((entry / "environ").read_bytes().split(b"\0"))
    except OSError:
        environ = set()
    if any(f"RAY_TMPDIR={root}".encode() in environ for root in roots):
        return True
    try:
        fds = list((entry / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if any(target == root or target.startswith(root + os.sep) for root in roots):
            return True
    return False


def _self_and_ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 0 and pid not in pids:
        pids.add(pid)
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent pid
    return pids


def _alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; its parent reaps it


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trials.study.ray_reap", description=__doc__)
    ap.add_argument("temp_dir", help="the RAY_TMPDIR the processes were started with")
    ap.add_argument("--remove", action="store_true", help="then delete the directory")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.temp_dir):
        return 0
    for pid, cmd in sorted(reap(args.temp_dir).items()):
        print(f"ray_reap: stopped {pid} {cmd[:120]}")
    if args.remove:
        shutil.rmtree(args.temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
