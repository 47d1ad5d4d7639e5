"""`fastscale study submit|status|logs` against a real Ray head with its dashboard (Ray Jobs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from trials.study import load_results

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jobs_head():
    """A one-node cluster with the dashboard (Ray Jobs server) on a free loopback port."""
    pytest.importorskip("aiohttp", reason="Ray Jobs needs ray[default] (the dashboard)")
    from ray.cluster_utils import Cluster

    old_path = os.environ.get("PATH", "")
    # the job runs `fastscale ...`: the cluster's processes must find this venv's script
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{old_path}"
    port = _free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": 80 * 1024**2,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": port,
            "gcs_server_port": _free_port(),
            # the jobs agent's HTTP port; the default (52365) may belong to another cluster
            "dashboard_agent_listen_port": _free_port(),
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=1).read()
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        cluster.shutdown()
        os.environ["PATH"] = old_path


def fastscale(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [sys.executable, "-m", "trials", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_submit_a_study_through_ray_jobs_and_follow_it(jobs_head, tmp_path):
    out = tmp_path / "study"
    proc = fastscale(
        "study", "submit", "--address", jobs_head, "--space", "regnetx", "--regime", "5MF",
        "-n", "1", "--resolution", "16", "--train-size", "128", "--val-size", "128",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    submitted = json.loads(proc.stdout)  # --json: {job_id, entrypoint}
    job_id = submitted["job_id"]
    assert job_id and submitted["entrypoint"].startswith("fastscale study run ")
    assert f"--out {out}" in submitted["entrypoint"]

    logs = fastscale("study", "logs", job_id, "--address", jobs_head, "--follow")
    assert logs.returncode == 0, logs.stderr
    assert "[1/1]" in logs.stdout and "1 done" in logs.stdout

    status = fastscale("study", "status", job_id, "--address", jobs_head)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout
    assert load_results(out)["status"].tolist() == ["done"]

    missing = fastscale("study", "status", "raysubmit_nope", "--address", jobs_head)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
