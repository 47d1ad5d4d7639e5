"""Spaces benchmarks (run by hand): `python benchmarks/bench_spaces.py`.

1. vectorized complexity vs the scalar walk on 100k random RegNetY configs (goal >= 100x);
2. drawing 32 RegNetY models at 4GF ±1 % after imports (goal <= 50 ms);
3. `fastscale complexity RegNetY-4.0GF` wall time (goal <= 1 s, no torch/ray on that path).
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

from spaces import complexity, regnet_complexity_batch, sample
from spaces.sampler import DesignSpace
from spaces.specs import RegNetSpec, SpecError


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    n, n_scalar = 100_000, 3_000
    cols = DesignSpace.named("regnety").draw(np.random.default_rng(0), n)
    t_vec = median_time(lambda: regnet_complexity_batch("Y", **cols), 7)

    def scalar():
        for i in range(n_scalar):
            try:
                spec = RegNetSpec(
                    "Y", *(cols[k][i] for k in ("depth", "w0", "wa", "wm", "group_width"))
                )
            except SpecError:
                continue
            complexity(spec)

    t_scalar = median_time(scalar, 1) * n / n_scalar
    print(
        f"complexity of {n} configs: vectorized {t_vec * 1e3:.0f} ms, scalar {t_scalar:.1f} s (extrapolated from {n_scalar}); speed-up {t_scalar / t_vec:.0f}x"
    )

    sample("regnety", 4e9)
    t_sample = median_time(lambda: sample("regnety", 4e9, n=32, seed=0), 15)
    print(f"sample 32 RegNetY at 4GF ±1%: median {t_sample * 1e3:.1f} ms")

    exe = os.path.join(os.path.dirname(sys.executable), "fastscale")
    cmd = [exe, "complexity", "RegNetY-4.0GF"]
    subprocess.run(cmd, check=True, capture_output=True)
    t_cli = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True), 7)
    print(f"`fastscale complexity RegNetY-4.0GF` wall time: median {t_cli * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
