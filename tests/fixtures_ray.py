"""A real two-node Ray cluster on loopback, shared by every test of the session.

`ray_cluster` starts a head and a second node (1 CPU each, no dashboard) with
ray.cluster_utils.Cluster on a free port and connects this test process to it, so
in-process `run_study(...)` calls reuse the connection and subprocesses attach with
`--address ray_cluster.address`. Teardown stops exactly the processes it started (no
`ray stop --force`: other test runs may share this machine).
"""

from __future__ import annotations

import os
import socket

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray.cluster_utils import Cluster

    node = {
        "num_cpus": 1,
        "object_store_memory": 80 * 1024**2,
        "include_dashboard": False,
    }
    # explicit free ports: another cluster on this machine may hold the defaults
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            **node,
            "gcs_server_port": _free_port(),
            "dashboard_agent_listen_port": _free_port(),
        },
    )
    try:
        cluster.add_node(**node, dashboard_agent_listen_port=_free_port())
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
