"""Ctrl-C during `train --out D` says what was kept and the exact command that resumes it;
that command, run, says from which epoch it continues. Real processes and a real SIGINT."""

import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from spaces.io import save_specs
from tests.fixtures_train import make_tiny_spec

EPOCHS = 40  # far more than the test lets run: every run here ends by Ctrl-C
SMALL = ["--train-size", "128", "--val-size", "64", "-r", "16", "--batch-size", "32"]


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.json"
    save_specs(path, make_tiny_spec())
    return path


def interrupt_after(argv, needle: str) -> tuple[int, str]:
    """Run `argv`, send SIGINT once a stderr line starts with `needle`; (exit code, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(needle):
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.communicate(timeout=300)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(seen) + rest


def test_ctrl_c_names_what_was_kept_and_the_resume_command(tmp_path, spec_file):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "trials", "train", str(spec_file), "--epochs", str(EPOCHS),
            *SMALL, "--threads", "1", "--out", str(out)]  # fmt: skip
    code, err = interrupt_after(argv, "epoch 1/")
    assert code == 130, err
    match = re.search(
        r"the checkpoint of epoch (\d+) of 40 is kept in (\S+); resume with: (.+)", err
    )
    assert match, err
    kept, command = int(match.group(1)), match.group(3)
    assert match.group(2) == str(out)
    words = shlex.split(command)
    assert words[:2] == ["fastscale", "train"] and "--out" in words and str(spec_file) in words
    assert words[words.index("--epochs") + 1] == str(EPOCHS)
    # the printed command is exact: run as it is, it continues where the checkpoint stopped
    resumed = [sys.executable, "-m", "trials", *words[1:]]
    code, err = interrupt_after(resumed, "resuming from")
    assert code == 130, err
    assert (
        f"resuming from the checkpoint in {out}: {kept} of {EPOCHS} epochs done, "
        f"continuing at epoch {kept + 1}"
    ) in err


def test_ctrl_c_without_out_says_nothing_was_kept(spec_file):
    argv = [sys.executable, "-m", "trials", "train", str(spec_file), "--epochs", str(EPOCHS),
            *SMALL, "--threads", "1"]  # fmt: skip
    code, err = interrupt_after(argv, "epoch 1/")
    assert code == 130 and "nothing was kept (no --out)" in err, err
    assert os.linesep + "Traceback" not in err
