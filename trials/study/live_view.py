"""Live view of a running study: one line per running trial, done/total, ETA.

On a terminal the view redraws in place (rich Live); otherwise it prints one line per
finished or failed trial, so logs stay short and greppable. Ray's own tables are off.
"""

from __future__ import annotations

import sys
import time

from trials.progress import fmt_seconds
from trials.study.early_stop import label


def short_name(spec: dict) -> str:
    """RegNet parameters at a glance: 'X d16 w0=32 wa=41.3 wm=2.569 g=112 r32'."""
    if spec.get("w0") is not None:  # :g: a results table may hold these as floats (20.0)
        return (
            f"{spec.get('block')} d{spec['depth']:g} w0={spec['w0']:g} wa={spec['wa']:g} "
            f"wm={spec['wm']:g} g={spec['group_width']:g} r{_number(spec.get('resolution'))}"
        )
    depths = "-".join(str(d) for d in spec.get("depths", []))
    return f"{spec.get('family')} d={depths} r{_number(spec.get('resolution'))}"


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def one_line(text, limit: int = 160) -> str:
    """A failure message as one line: its first non-empty line, or for a traceback its last
    (where Python puts the exception); whitespace collapsed, cut at `limit` characters."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    pick = lines[-1] if lines and lines[0].startswith("Traceback") else (lines or [""])[0]
    line = " ".join(pick.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stopped_text(record: dict) -> str:
    """'stopped early by ASHA after epoch 1/4: val error 0.4123'."""

    error = record.get("error")
    shown = f"{error:.4f}" if isinstance(error, int | float) else "?"
    epochs = f"/{record['epochs']}" if record.get("epochs") else ""
    return (
        f"stopped early by {label(record.get('stopped_by'))} after epoch "
        f"{record.get('epochs_done')}{epochs}: val error {shown}"
    )


class StudyView:
    """Collects trial events from the driver's Tune callback and shows them."""

    def __init__(
        self, total: int, done: int = 0, *, enabled: bool = True, stream=None, clock=time.monotonic
    ):
        self.total = total
        self.clock = clock  # seconds; tests pass their own to fix the elapsed time
        self.done = done  # finished (done or failed for good) so far, this run included
        self.failed = 0
        self.stopped = 0  # stopped early by a scheduler or pruner (trials.study.early_stop)
        self.finished_here = 0
        self.interrupted = 0
        self.running: dict[str, dict] = {}
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start_time = clock()
        self.live = None
        if enabled and self.stream.isatty() and sys.stdout.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(
                self._render(), console=Console(file=self.stream), refresh_per_second=2
            )
            self.live.start()
        elif enabled:
            print(
                f"study: {total - done} of {total} trainings to run ({done} already finished); "
                "one line per finished training follows",
                file=self.stream,
                flush=True,
            )

    # -- events ---------------------------------------------------------------------------
    def start(self, key: str, name: str, attempt: int) -> None:
        self.running[key] = {"name": name, "epoch": 0, "epochs": None, "err": None, "try": attempt}
        self._refresh()

    def epoch(self, key: str, result: dict) -> None:
        row = self.running.get(key)
        if row is not None:
            row.update(epoch=result.get("epoch"), epochs=result.get("epochs"))
            row["err"] = result.get("val_error")
            self._refresh()

    def finish(self, key: str, name: str, record: dict, final: bool) -> None:
        """final: the candidate will not be retried (done, or out of attempts)."""
        self.running.pop(key, None)
        if final:
            self.done += 1
            self.finished_here += 1
            self.failed += record.get("status") == "failed"
            self.stopped += record.get("status") == "stopped"
        if not self.enabled:
            return
        status = record.get("status")
        if status == "done":
            what = (
                f"done  error {record.get('error'):.4f}  epoch_time {record.get('epoch_time'):.2f}s"
            )
        elif status == "stopped":
            what = stopped_text(record)
        else:
            retry = "" if final else " (will retry)"
            failure = one_line(record.get("failure"))
            what = f"FAILED attempt {record.get('attempts')}{retry}: {failure}"
        line = f"[{self.done}/{self.total}] {key} {name}  {what}  ETA {fmt_seconds(self.eta())}"
        if self.live is not None:
            self.live.console.print(line)
        else:
            print(line, file=self.stream, flush=True)
        self._refresh()

    def fraction_here(self) -> float:
        """Trainings' worth of work done by this run: finished ones plus the completed
        epochs of running ones (so an ETA exists after the first epoch anywhere)."""
        running = sum(
            (r["epoch"] or 0) / r["epochs"] for r in self.running.values() if r.get("epochs")
        )
        return self.finished_here + running

    def eta(self) -> float | None:
        left = self.total - self.done
        if left <= 0:
            return 0.0
        done_here = self.fraction_here()
        if done_here <= 0:
            return None
        remaining = left - (done_here - self.finished_here)
        return (self.clock() - self.start_time) / done_here * remaining

    def close(self) -> None:
        """Stop drawing. Trials still listed as running were stopped with the driver (Ctrl-C,
        SIGTERM): they are reported as interrupted, not running."""
        self.interrupted = len(self.running)
        self.running.clear()
        if self.enabled and self.interrupted and self.live is None:
            print(self._header(), file=self.stream, flush=True)
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()
            self.live = None

    # -- drawing --------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _header(self) -> str:
        early = f", {self.stopped} stopped early" if self.stopped else ""
        head = f"study: {self.done}/{self.total} trainings finished ({self.failed} failed{early}), "
        if self.interrupted:
            return head + f"{self.interrupted} interrupted (rerun the same command to resume)"
        eta = self.eta()
        wait = "after the first epoch" if eta is None and self.done < self.total else ""
        return head + f"{len(self.running)} running, ETA {wait or fmt_seconds(eta)}"

    def _render(self):
        from rich.text import Text

        lines = [self._header()]
        for key, r in self.running.items():
            ep = f"epoch {r['epoch']}/{r['epochs']}" if r["epochs"] else "starting"
            err = f"  val error {r['err']:.4f}" if r["err"] is not None else ""
            lines.append(f"  {key}  {r['name']}  try {r['try']}  {ep}{err}")
        return Text("\n".join(lines))
