"""scripts/test.sh's cleanup (trials.study.ray_reap) stops the Ray processes of its own temp dir —
including the agents a SIGKILLed driver leaves behind — and nothing else: a separate
`ray start --head` cluster and an unrelated `user_monitor.py` survive it (`ray stop --force`,
the old cleanup, killed both)."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from trials.study.ray_reap import reap, tied_processes

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))
DRIVER = """
import time, ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
@ray.remote
class Pinger:
    def ping(self):
        return 1
pinger = Pinger.remote()
ray.get(pinger.ping.remote())
print("ready", flush=True)
time.sleep(600)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra) -> dict:
    drop = ("RAY_TMPDIR", "RAY_ADDRESS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **extra}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def short_dirs():
    """Two private Ray temp dirs, short (Ray's socket paths must stay under 108 bytes)."""
    dirs = [tempfile.mkdtemp(prefix="fsr-", dir="/tmp") for _ in range(2)]
    yield dirs
    for d in dirs:
        reap(d, grace_s=1.0)  # whatever the test left, stopped by the helper under test
        subprocess.run(["rm", "-rf", d], check=False)


def test_reap_stops_the_runs_processes_and_spares_other_clusters(tmp_path, short_dirs):
    run_dir, other_dir = short_dirs
    # someone else's cluster, with its own temp dir and free ports
    port = free_port()
    start = [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"]
    start += [f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"]
    proc = subprocess.run(start, env=base_env(RAY_TMPDIR=other_dir), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    monitor_script = tmp_path / "user_monitor.py"
    monitor_script.write_text("import time\ntime.sleep(600)\n")
    monitor = subprocess.Popen([sys.executable, str(monitor_script)], env=base_env())
    # this run's driver, killed mid-work: its dashboard and runtime-env agents outlive it
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        env=base_env(RAY_TMPDIR=run_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert driver.stdout.readline().strip() == "ready"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        others = tied_processes(other_dir)
        assert any("gcs_server" in c for c in others.values()) and any(
            "raylet" in c for c in others.values()
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the driver's raylet and GCS die with it
            orphans = tied_processes(run_dir)
            if orphans and not any("raylet" in c for c in orphans.values()):
                break
            time.sleep(0.2)
        assert orphans, "a SIGKILLed driver left nothing behind: the drill proves nothing"
        assert not set(orphans) & set(others) and monitor.pid not in orphans

        stopped = reap(run_dir)
        assert set(orphans) <= set(stopped)
        assert not [p for p in orphans if alive(p)] and not tied_processes(run_dir)
        assert all(alive(p) for p in others), "another cluster's process was stopped"
        assert monitor.poll() is None, "an unrelated user_monitor.py was stopped"
        status = subprocess.run(
            [RAY, "status", f"--address=127.0.0.1:{port}"],
            env=base_env(RAY_TMPDIR=other_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr[-2000:]  # still serving
    finally:
        for p in (driver, monitor):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_the_test_script_stops_only_its_own_ray():
    script = (Path(__file__).parents[1] / "scripts" / "test.sh").read_text()
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "ray stop" in line]
    assert any("RAY_TMPDIR=" in line for line in code)
    assert any("trials.study.ray_reap" in line and "trap" in line for line in code)
