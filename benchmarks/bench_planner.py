"""Planner benchmarks (run by hand): `python benchmarks/bench_planner.py`.

1. a plan for RegNetY-4.0GF -> 16GF over 101 α values (0, 0.01, ..., 1) plus the named
   strategies, with exact solving and fine-tuning, in-process (goal <= 50 ms median);
2. the same solving without the DataFrame (`solve_many`), and one `solve` call;
3. `fastscale plan RegNetY-4.0GF --target 16GF` wall time (goal <= 1.5 s; no torch/ray);
4. how often a single s lands within 1 % (the reference rules) vs the solver with fine-tuning.
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

from planner.plan import candidate_strategies, plan
from planner.solve import solve, solve_many
from spaces.registry import get_model

ALPHAS = [round(i / 100, 2) for i in range(101)]


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main():
    base = get_model("RegNetY-4.0GF")
    df = plan(base, "16GF", alphas=ALPHAS, include_all=True)  # warm-up
    med, best = median_time(lambda: plan(base, "16GF", alphas=ALPHAS), 21)
    print(
        f"plan RegNetY-4.0GF -> 16GF, {len(df)} candidates (101 α + named): "
        f"median {med * 1e3:.1f} ms, best {best * 1e3:.1f} ms (goal <= 50 ms)"
    )
    strats = candidate_strategies(ALPHAS)
    med, _ = median_time(lambda: solve_many(base, strats, 16e9), 21)
    print(f"  of which solve_many over {len(strats)} strategies: median {med * 1e3:.1f} ms")
    med, _ = median_time(lambda: solve(base, "dWr", 16e9), 21)
    print(f"solve RegNetY-4.0GF dWr -> 16GF: median {med * 1e3:.1f} ms")

    on = df["on_target"].mean()
    single = solve_many(base, strats, 16e9, finetune=False)
    on_single = np.mean([s.on_target for s in single])
    tuned = sum(bool(f) for f in df["finetuned"])
    print(
        f"within ±1 %: single s {on_single:.0%} of candidates, with fine-tuning {on:.0%} "
        f"({tuned} fine-tuned)"
    )

    exe = os.path.join(os.path.dirname(sys.executable), "fastscale")
    cmd = [exe, "plan", "RegNetY-4.0GF", "--target", "16GF"]
    subprocess.run(cmd, check=True, capture_output=True)
    med, best = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True), 7)
    print(
        f"`fastscale plan RegNetY-4.0GF --target 16GF` wall time: median {med * 1e3:.0f} ms, "
        f"best {best * 1e3:.0f} ms (goal <= 1.5 s)"
    )
    probe = (
        "import sys; from trials.cli import main; main(['plan','RegNetY-4.0GF','--target','16GF',"
        "'--json']); print([m for m in ('torch','ray') if m in sys.modules], file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    print(f"heavy modules imported by `fastscale plan`: {out.stderr.strip()}")


if __name__ == "__main__":
    main()
