"""Live view of a running study: one line per running trial, done/total, ETA.

On a terminal the view redraws in place (rich Live); otherwise it prints one line per
finished or failed trial, so logs stay short and greppable. Ray's own tables are off.
"""

from __future__ import annotations

import sys
import time


def short_name(spec: dict) -> str:
    """RegNet parameters at a glance: 'X d16 w0=32 wa=41.3 wm=2.569 g=112 r32'."""
    if "w0" in spec:
        return (
            f"{spec.get('block')} d{spec['depth']} w0={spec['w0']} wa={spec['wa']:g} "
            f"wm={spec['wm']:g} g={spec['group_width']} r{spec.get('resolution')}"
        )
    depths = "-".join(str(d) for d in spec.get("depths", []))
    return f"{spec.get('family')} d={depths} r{spec.get('resolution')}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class StudyView:
    """Collects trial events from the driver's Tune callback and shows them."""

    def __init__(self, total: int, done: int = 0, *, enabled: bool = True, stream=None):
        self.total = total
        self.done = done  # finished (done or failed for good) so far, this run included
        self.failed = 0
        self.finished_here = 0
        self.running: dict[str, dict] = {}
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start_time = time.monotonic()
        self.live = None
        if enabled and self.stream.isatty() and sys.stdout.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(
                self._render(), console=Console(file=self.stream), refresh_per_second=2
            )
            self.live.start()

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
        if not self.enabled:
            return
        status = record.get("status")
        if status == "done":
            what = (
                f"done  error {record.get('error'):.4f}  epoch_time {record.get('epoch_time'):.2f}s"
            )
        else:
            retry = "" if final else " (will retry)"
            what = f"FAILED attempt {record.get('attempts')}{retry}: {record.get('failure')}"
        line = f"[{self.done}/{self.total}] {key} {name}  {what}  ETA {fmt_seconds(self.eta())}"
        if self.live is not None:
            self.live.console.print(line)
        else:
            print(line, file=self.stream, flush=True)
        self._refresh()

    def eta(self) -> float | None:
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if not self.finished_here:
            return None
        return (time.monotonic() - self.start_time) / self.finished_here * left

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()
            self.live = None

    # -- drawing --------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self):
        from rich.text import Text

        lines = [
            f"study: {self.done}/{self.total} finished ({self.failed} failed), "
            f"{len(self.running)} running, ETA {fmt_seconds(self.eta())}"
        ]
        for key, r in self.running.items():
            ep = f"epoch {r['epoch']}/{r['epochs']}" if r["epochs"] else "starting"
            err = f"  val error {r['err']:.4f}" if r["err"] is not None else ""
            lines.append(f"  {key}  {r['name']}  try {r['try']}  {ep}{err}")
        return Text("\n".join(lines))
