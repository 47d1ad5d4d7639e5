"""A study on a Ray cluster whose worker cannot see the study directory (no shared
filesystem), with the driver SIGKILLed twice and resumed.

The head node offers no CPUs, so every trial runs on the worker node, which is started with
`ray start --address ...` inside its own mount namespace (`unshare --mount`) with an empty
tmpfs over the directory that holds the study. Checkpoints go to a storage directory both
nodes see (what NFS or a bucket gives a real cluster). The kills are event-triggered
(FASTSCALE_STUDY_KILL): right after a trial persisted its final record (before the driver
recorded it), and right after an epoch's checkpoint reached the storage.

Needs root (CI runs as root on Linux) for unshare/mount; skipped with the reason elsewhere.
Every process it starts runs in its own process group and is stopped through it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trials.study import StudyStore
from trials.study.checkpoint_storage import checkpoints

pytestmark = pytest.mark.slow
TINY = ["--resolution", "16", "--train-size", "128", "--val-size", "128", "--batch-size", "64"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _can_unshare() -> str | None:
    """None when a private mount namespace with a tmpfs can be made here, else why not."""
    if not sys.platform.startswith("linux"):
        return "needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "needs root for unshare --mount and mount -t tmpfs (CI runs as root)"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "unshare/mount not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs tmpfs /mnt && umount /mnt"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a new mount namespace: {probe.stderr.strip()[:200]}"
    return None


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    return {**env, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class Node:
    """A `ray start --block` process in its own process group (stopped through it)."""

    def __init__(self, argv: list[str], log: Path):
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # ray start --block stops its children
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of ours is left
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def _ports(*names: str) -> list[str]:
    return [arg for n in names for arg in (f"--{n}", str(_free_port()))]


@pytest.fixture
def split_cluster(tmp_path):
    """(address, private dir, shared dir): a 0-CPU head and a 1-CPU worker that cannot see
    `private` (an empty tmpfs covers it in the worker's mount namespace)."""
    reason = _can_unshare()
    if reason:
        pytest.skip(reason)
    private, shared = tmp_path / "private", tmp_path / "shared"
    private.mkdir()
    shared.mkdir()
    (private / "sentinel").write_text("the worker must not see this")
    port = _free_port()
    common = ["--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    common += ["--object-store-memory", str(80 * 1024**2)]
    head = Node(
        [_ray_bin(), "start", "--head", "--port", str(port), "--num-cpus", "0",
         "--include-dashboard", "false", *common,
         *_ports("ray-client-server-port", "dashboard-agent-listen-port")],
        tmp_path / "head.log",
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    nodes = [head]
    try:
        _wait_port(port, head, tmp_path / "head.log")
        worker_cmd = (
            f"mount -t tmpfs tmpfs {private} && test ! -e {private}/sentinel && "
            f"exec {_ray_bin()} start --address {address} --num-cpus 1 "
            + " ".join([*common, *_ports("dashboard-agent-listen-port")])
        )
        for attempt in range(3):  # a loaded machine can exceed ray start's 30 s raylet wait
            worker = Node(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", worker_cmd],
                tmp_path / f"worker-{attempt}.log",
            )
            nodes.append(worker)
            if _wait_nodes(address, 2, worker):
                break
        else:
            pytest.fail(f"worker did not join: {(tmp_path / 'worker-2.log').read_text()[-2000:]}")
        yield address, private, shared
    finally:
        for node in reversed(nodes):
            node.stop()


def _wait_port(port: int, node: Node, log: Path, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert node.proc.poll() is None, log.read_text()[-2000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"Ray head did not listen: {log.read_text()[-2000:]}")


def _wait_nodes(address: str, count: int, node: Node, timeout: float = 150) -> bool:
    """Whether `count` nodes are alive before `node` exits or the timeout."""
    code = (
        "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if node.proc.poll() is not None:
            node.stop()
            return False
        out = subprocess.run(
            [sys.executable, "-c", code, address], capture_output=True, text=True, env=_env()
        )
        if out.stdout.strip() == str(count):
            return True
        time.sleep(1)
    node.stop()
    return False


def _wait_until_idle(address: str, timeout: float = 120) -> None:
    """Until every CPU of the cluster is free again: the killed driver's trial actors are
    gone (a fixed pause is too short on a loaded machine). Asked from a fresh process: this
    test process is not connected to the split cluster."""
    code = (
        "import ray, sys, time; ray.init(address=sys.argv[1], log_to_driver=False)\n"
        "end = time.monotonic() + float(sys.argv[2])\n"
        "while time.monotonic() < end:\n"
        "    total = ray.cluster_resources().get('CPU', 0)\n"
        "    if total and ray.available_resources().get('CPU', 0) >= total:\n"
        "        print('idle'); break\n"
        "    time.sleep(0.5)\n"
    )
    args = [sys.executable, "-c", code, address, str(timeout)]
    out = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=timeout + 60)
    assert out.stdout.strip() == "idle", f"the cluster stayed busy: {out.stderr[-2000:]}"


def _driver(args: list[str], kill_at: str | None, timeout: float = 300):
    env = _env()
    if kill_at:
        env["FASTSCALE_STUDY_KILL"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "trials", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def test_no_shared_filesystem_kill_and_resume(split_cluster, tmp_path):
    address, private, shared = split_cluster
    out = private / "study"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "3", "--epochs", "2"]
    args += [*TINY, "--out", str(out), "--address", address]
    args += ["--checkpoint-storage", str(shared), "--json"]
    store = StudyStore(out)

    # 1. killed right after the first trial persisted its final record, before recording it
    first = _driver(args, "final:1")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    running = {k: store.status(k) for k in store.keys() if store.status(k)["status"] == "running"}
    assert len(running) == 1 and all(r["epochs_done"] == 2 for r in running.values())
    assert not any(store.status(k)["status"] == "done" for k in store.keys())
    finished_unrecorded = next(iter(running))
    _wait_until_idle(address)  # the cluster stops the dead driver's trial

    # 2. resume, killed right after the next candidate's first epoch result arrived: its
    #    checkpoint is in the storage, the record does not point at it yet
    second = _driver(args, "epoch:1")
    assert second.returncode == -signal.SIGKILL, second.stderr[-2000:]
    done_at_kill = {k for k in store.keys() if store.status(k)["status"] == "done"}
    assert done_at_kill == {finished_unrecorded}  # recovered from the storage, not retrained
    interrupted = {
        k: store.status(k) for k in store.keys() if store.status(k)["status"] == "running"
    }
    assert len(interrupted) == 1
    ((key, before),) = interrupted.items()
    assert before["epochs_done"] == 0 and checkpoints(before["trial"])  # record one behind
    _wait_until_idle(address)

    # 3. resume to the end
    last = _driver(args, None)
    assert last.returncode == 0, last.stderr[-2000:]
    rows = {r["key"]: r for r in json.loads(last.stdout)}
    assert len(rows) == 3 and all(r["status"] == "done" for r in rows.values())
    for k in store.keys():  # nothing lost, nothing trained twice to completion
        assert store.log_path(k).read_text().count(" done: error ") == 1
    assert store.status(finished_unrecorded)["attempts"] == 1
    final = store.status(key)
    if final["attempts"] == 2:  # resumed on the worker from the checkpoint in the storage
        assert final["resumed_at_epoch"] >= 1
    else:  # the killed driver's trial finished before the cluster stopped it: recovered
        assert final["attempts"] == 1 and "recovered from" in store.log_path(key).read_text()
    assert all(r["node"] for r in rows.values())
    figures = {  # the kill/resume figures, for the note (pytest -s prints them)
        "kills": 2,
        "completed": sum(r["status"] == "done" for r in rows.values()),
        "trained_twice": sum(
            store.log_path(k).read_text().count(" done: error ") > 1 for k in store.keys()
        ),
        "lost": 3 - len(rows),
        "recovered_from_storage": finished_unrecorded,
        "interrupted": key,
        "interrupted_attempts": final["attempts"],
        "resumed_at_epoch": final.get("resumed_at_epoch"),
    }
    print("kill/resume:", json.dumps(figures))
    # the worker never saw the study directory: every checkpoint went to the shared storage
    assert not any(out.rglob("checkpoint.pt")) and not (out / "ray").exists()
    assert any(shared.rglob("record.json"))


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a small tmpfs at `path` (root only); None, or why it cannot be done here."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "needs root to mount a tmpfs (CI runs as root)"
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    return None if res.returncode == 0 else f"cannot mount a tmpfs: {res.stderr.strip()[:200]}"


def test_full_disk_in_the_driver_is_one_line_and_leaves_nothing_running(ray_cluster, tmp_path):
    """The study directory on a real 2 MB tmpfs that fills up while the study runs
    (checkpoints elsewhere): exit 2 with one line, no temp files, no candidate shown
    `running`, completed work kept; after space is freed a resume finishes the study."""
    disk = tmp_path / "disk"
    reason = _mount_tmpfs(disk, "2m")
    if reason:
        pytest.skip(reason)
    out = disk / "study"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "3", "--epochs", "2"]
    args += [*TINY, "--out", str(out), "--address", ray_cluster.address]
    args += ["--checkpoint-storage", str(tmp_path / "storage")]
    env = {k: v for k, v in _env().items()}
    filler = disk / "filler"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trials", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        store = StudyStore(out)

        def one_done():
            if not (out / "study.json").exists():
                return False
            return any(store.status(k)["status"] == "done" for k in store.keys())

        end = time.monotonic() + 240
        while not one_done() and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        with open(filler, "wb") as fh:  # fill the disk while the study runs
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert proc.returncode == 2, err[-3000:]
        assert lines[-1].startswith("fastscale: error: no space left on device"), err[-3000:]
        assert "Traceback" not in err
        leftovers = [p.name for p in out.rglob(".*") if p.name != ".lock"]
        assert leftovers == []  # no temp files
        code = subprocess.run(
            [sys.executable, "-m", "trials", "study", "show", str(out), "--json"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        rows = json.loads(code.stdout)
        assert "running" not in {r["status"] for r in rows}
        assert any(r["status"] == "done" for r in rows)
        filler.unlink()
        again = subprocess.run(
            [sys.executable, "-m", "trials", *args, "--json"], capture_output=True, text=True,
            env=env, timeout=400,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-2000:]
        assert all(r["status"] == "done" for r in json.loads(again.stdout))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
