"""SIGTERM to a running `fastscale study run` stops it like Ctrl-C: one line, exit 130, no
C++ stack dump from Ray's signal handler, and the study resumable (the driver attaches to
the shared test cluster, tests/fixtures_ray.py; `ray.init` installs the handler either way)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
def test_sigterm_is_a_clean_interrupt(ray_cluster, tmp_path):
    out = tmp_path / "s"
    argv = [sys.executable, "-m", "trials", "study", "run", "--space", "regnetx", "--regime",
            "5e6", "-n", "2", "--resolution", "16", "--epochs", "3", "--train-size", "512",
            "--val-size", "128", "--out", str(out), "--address", ray_cluster.address]  # fmt: skip
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    err_path = tmp_path / "err.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = time.monotonic() + 240
        # the view announces the work once Ray is up and the first trials are being set up
        while "trainings to run" not in err_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err_path.read_text()
            time.sleep(0.5)
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
    text = err_path.read_text()
    assert rc == 130, text
    assert "SIGTERM received" not in text and "PC: @" not in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("fastscale: interrupted") or last == "fastscale: aborted", last
    assert (out / "study.json").is_file()  # nothing lost: the same command resumes
