"""Execution: training, timing, Ray Tune studies, comparisons, reports and the CLI.

Importing this package imports neither torch nor ray; the modules that need them do.

It does set one default before torch can load OpenMP (libgomp): how long an idle OpenMP
thread spins before it sleeps, chosen by how busy the machine is when fastscale starts.
Measured (benchmarks/bench_threads.py, docs/training.md), training RegNetY-200MF on 2 cores:

- nothing else running: a short spin (`GOMP_SPINCOUNT=10000`) is as fast as libgomp's
  default long spin (630 vs 607 img/s), sleeping at once (`OMP_WAIT_POLICY=PASSIVE`) much
  slower (393);
- other work on the cores (two busy processes): passive 241 img/s, the short spin 166, the
  long default spin 125 (and, under the heavier load of six engineers' test suites, 4.5 vs
  82 for passive: spinning threads burn the time slice their sibling needs).

So: a 1-minute load average below half the CPUs gets the short spin, anything busier sleeps
at once. A value the user set for either variable is kept; Ray trial processes inherit the
driver's.
"""

import os as _os


def omp_wait_default(environ, load: float | None, cpus: int) -> dict:
    """The OpenMP wait variables to set (none if the user set either): the rule above."""
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return {}
    if load is None or load >= cpus / 2:  # busy, or no load average on this platform
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    return {"GOMP_SPINCOUNT": "10000"}


def _load() -> float | None:
    try:
        return _os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return None


def available_cpus() -> int:
    """Cores this process may run on (Ray and taskset restrict the affinity mask)."""
    try:
        return max(1, len(_os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, _os.cpu_count() or 1)


def _set_omp_wait_default() -> None:
    _os.environ.update(omp_wait_default(_os.environ, _load(), available_cpus()))


_set_omp_wait_default()
