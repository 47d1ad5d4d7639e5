"""Progress within long work: one self-overwriting stderr line (images done, images/s, ETA).

Training and timing call a `Progress` after every step. It draws only when its stream is a
terminal (logs and pipes stay free of carriage-return noise; the per-epoch lines the
commands print are the record there), and at most a few times a second.
"""

from __future__ import annotations

import sys
import time


def fmt_seconds(s: float | None) -> str:
    """3s, 4m05s, 1h02m; '?' when unknown."""
    if s is None or s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    """A status line for `total` units of `unit` (images, steps), redrawn in place.

    `enabled=None` draws when `stream` is a terminal. `update(done, total, label)` sets the
    position (the rate and ETA are measured from the first call after `restart`); `note`
    replaces the line with text (e.g. "evaluating"); `clear` erases it before other output.
    `clock` returns seconds (time.monotonic; tests pass their own to fix the elapsed time).
    """

    def __init__(
        self, unit: str = "img", *, stream=None, enabled: bool | None = None, clock=time.monotonic
    ):
        self.unit = unit
        self.clock = clock
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.min_interval = 0.5
        self._drawn = 0.0
        self._width = 0
        self.restart()

    def restart(self, done: int = 0) -> None:
        """Measure the rate from now, when `done` units are already done."""
        self._t0, self._done0 = self.clock(), done

    def rate(self, done: int) -> float | None:
        elapsed, units = self.clock() - self._t0, done - self._done0
        return units / elapsed if units > 0 and elapsed > 0 else None

    def line(self, done: int, total: int, label: str = "") -> str:
        rate = self.rate(done)
        eta = (total - done) / rate if rate else None
        speed = f"{rate:.3g} {self.unit}/s" if rate and rate < 100 else None
        speed = speed or (f"{rate:.0f} {self.unit}/s" if rate else f"? {self.unit}/s")
        head = f"{label}  " if label else ""
        return f"{head}{done}/{total} {self.unit}  {speed}  ETA {fmt_seconds(eta)}"

    def update(self, done: int, total: int, label: str = "") -> None:
        now = self.clock()
        if not self.enabled or (now - self._drawn < self.min_interval and done < total):
            return
        self._drawn = now
        self._draw(self.line(done, total, label))

    def note(self, text: str) -> None:
        if self.enabled:
            self._draw(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)
