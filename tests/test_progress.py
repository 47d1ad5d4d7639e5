"""Progress displays: the in-epoch line of train/time, the study view's ETA, interruption and
failure lines (real objects, an in-memory stream standing in for the terminal)."""

from __future__ import annotations

import io

from trials.progress import Progress, fmt_seconds
from trials.study.live_view import StudyView, one_line


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_progress_line_rate_and_eta():
    stream, clock = io.StringIO(), Clock()
    bar = Progress("img", stream=stream, enabled=True, clock=clock)
    clock.now += 30  # time before restart must not count
    bar.restart(100)  # 100 images were already done (a resumed epoch)
    clock.now += 8
    bar.update(500, 1000, "epoch 1/2")
    # 400 images in 8 s since restart: 50 img/s, 500 left -> 10 s
    assert stream.getvalue() == "\repoch 1/2  500/1000 img  50 img/s  ETA 10s"
    clock.now += 0.1  # within min_interval: no redraw before the end
    bar.update(520, 1000, "epoch 1/2")
    assert stream.getvalue().count("\r") == 1
    clock.now += 0.4
    bar.update(1000, 1000, "epoch 1/2")  # 900 in 8.5 s
    assert stream.getvalue().endswith("\repoch 1/2  1000/1000 img  106 img/s  ETA 0s")
    bar.clear()
    assert stream.getvalue().endswith("\r")


def test_progress_is_silent_off_a_terminal():
    stream = io.StringIO()  # StringIO is not a tty: enabled=None must draw nothing
    bar = Progress("img", stream=stream)
    bar.update(1, 2)
    bar.note("evaluating")
    bar.clear()
    assert stream.getvalue() == ""


def test_fmt_seconds():
    assert [fmt_seconds(s) for s in (None, 3, 65, 3720)] == ["?", "3s", "1m05s", "1h02m"]


def test_study_eta_after_the_first_epoch_and_interruption():
    stream = io.StringIO()
    clock = Clock()
    view = StudyView(total=4, stream=stream, clock=clock)
    view.start("a", "X d16", 1)
    view.start("b", "X d20", 1)
    assert view.eta() is None and "ETA after the first epoch" in view._header()
    clock.now += 10  # 10 s into the run
    view.epoch("a", {"epoch": 1, "epochs": 2})
    # half a training done in 10 s: 3.5 trainings left -> 70 s
    assert view.eta() == 70
    view.close()  # Ctrl-C: the running trials were stopped with the driver
    last = stream.getvalue().splitlines()[-1]
    assert "2 interrupted (rerun the same command to resume)" in last and "running" not in last


def test_a_failure_is_one_line():
    tb = "Traceback (most recent call last):\n  File 'x.py'\n    boom()\nValueError:   bad  thing\n"
    assert one_line(tb) == "ValueError: bad thing"
    assert one_line("TrainingDiverged: loss is nan\n  (lr 0.25)\n  more detail") == (
        "TrainingDiverged: loss is nan"
    )
    assert one_line("RuntimeError: " + "x" * 400).endswith("…")
    assert len(one_line("RuntimeError: " + "x" * 400)) == 160
