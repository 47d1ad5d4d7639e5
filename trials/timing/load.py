"""Was the machine busy while we measured? Load average and this process' CPU share.

Timings on a shared host are slower, and even the process CPU clock moves (a neighbour
shares the caches and the memory bandwidth: one model's CPU-clock time moved 18 % between
a quiet and a loaded run, docs/planner.md "Timing protocol"). So `time` and `calibrate` say
how busy the machine was: the 1-minute load average against the CPUs before and after, and
the share of the measuring threads' time this process actually ran (process CPU seconds /
wall seconds / threads; below 1 when other work took the CPUs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

BUSY_SHARE = 0.85  # the measuring threads ran less than this share of the wall time


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class LoadSample:
    load: float | None  # 1-minute load average
    wall: float
    cpu: float  # this process' CPU seconds

    @classmethod
    def now(cls) -> LoadSample:
        return cls(load_average(), time.perf_counter(), time.process_time())


def cpu_share(before: LoadSample, after: LoadSample, threads: int) -> float | None:
    wall = after.wall - before.wall
    if wall <= 0:
        return None
    return (after.cpu - before.cpu) / wall / max(1, threads)


def load_report(before: LoadSample, after: LoadSample, threads: int) -> dict:
    """{"load_before", "load_after", "cpus", "threads", "cpu_share", "busy"}: busy when the
    load average (which counts this process' own threads) exceeded the CPUs, or the process
    ran less than `BUSY_SHARE` of its threads' wall time."""
    cpus = cpu_count()
    share = cpu_share(before, after, threads)
    loads = [v for v in (before.load, after.load) if v is not None]
    busy = bool(loads and max(loads) > cpus) or (share is not None and share < BUSY_SHARE)
    return {
        "load_before": before.load,
        "load_after": after.load,
        "cpus": cpus,
        "threads": threads,
        "cpu_share": share,
        "busy": busy,
    }


def load_line(report: dict) -> str:
    """One line for the human output, e.g. 'machine busy while measuring: load 8.1 -> 9.3 on 2
    CPUs; this process ran 61% of its thread's time (timings are likely slow ...)'."""

    def fmt(v):
        return "?" if v is None else f"{v:.1f}"

    share = report["cpu_share"]
    state = "busy" if report["busy"] else "quiet"
    line = (
        f"machine {state} while measuring: load {fmt(report['load_before'])} -> "
        f"{fmt(report['load_after'])} on {report['cpus']} CPUs"
    )
    if share is not None:
        t = report["threads"]
        whose = f"its {t} threads'" if t > 1 else "its thread's"
        line += f"; this process ran {share:.0%} of {whose} time"
    if report["busy"]:
        line += " (timings are likely slow and noisy: measure again when it is quiet)"
    return line
