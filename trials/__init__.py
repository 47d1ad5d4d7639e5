"""Execution: training, timing, Ray Tune studies, comparisons, reports and the CLI.

Importing this package imports neither torch nor ray; the modules that need them do.

It does set one default before torch can load OpenMP: idle OpenMP threads sleep instead of
spin-waiting (`OMP_WAIT_POLICY=PASSIVE`). With spinning threads, CPU training on a machine
whose cores other jobs also use ran 10-15x slower than with one thread; passive waiting
keeps the speed of all cores (benchmarks/bench_threads.py, docs/training.md). A value the
user set is kept; Ray trial processes inherit it from the driver.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
