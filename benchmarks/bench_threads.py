"""CPU training throughput by thread count and OpenMP wait policy (run by hand):

    python benchmarks/bench_threads.py                       # 3 alternating rounds
    python benchmarks/bench_threads.py --rounds 5 --budget 20 --model RegNetY-200MF
    python benchmarks/bench_threads.py --busy 2        # with 2 busy processes on the cores

Why: torch's CPU build runs its intra-op threads on OpenMP (libgomp), whose idle threads
spin-wait for the next parallel region by default. On a machine whose cores other jobs also
use, a spinning thread burns the time slice its sibling needs, so "all cores" can be many
times slower than one thread. `OMP_WAIT_POLICY=PASSIVE` makes idle threads sleep at once;
`GOMP_SPINCOUNT=N` makes them spin N iterations first (libgomp's default is 300000).

Each configuration runs in a fresh Python process (libgomp reads the policy once, when it is
loaded): the plain training step of `trials.timing.step_time.time_model` (forward, cross-entropy,
backward, SGD) on random batches, repeated until `--budget` seconds have passed after the
timing protocol's warm-up until steady (`trials.timing.protocol`). Reported per configuration: images/s of wall time and images per CPU-second
of the process (the median over rounds; rounds alternate the configurations so drifting
load hits each alike), with the 1-minute load average seen at the start of each run. The
machine's state is whatever it is while this runs (note it), plus `--busy N` processes
spinning in pure Python for a reproducible loaded case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import torch, torch.nn.functional as F
from spaces.build import build_model
from spaces.registry import get_model
model_name, resolution, batch, threads, budget = sys.argv[1:6]
torch.set_num_threads(int(threads))
torch.manual_seed(0)
spec = get_model(model_name).replace(resolution=int(resolution), in_channels=1, num_classes=10)
model = build_model(spec).train()
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
x = torch.randn(int(batch), 1, int(resolution), int(resolution))
y = torch.randint(0, 10, (int(batch),))
def step():
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
from trials.timing.protocol import DEFAULT, steady
warm = []  # the timing protocol's warm-up rule (trials.timing.protocol)
while not steady(warm, DEFAULT):
    t = time.perf_counter()
    step()
    warm.append(time.perf_counter() - t)
steps, tic, cpu = 0, time.perf_counter(), time.process_time()
while steps < 2 or time.perf_counter() - tic < float(budget):
    step()
    steps += 1
wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
print(json.dumps({"images": steps * int(batch), "wall": wall, "cpu": cpu}))
"""


SPIN_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")


def configs(cores: int) -> list[tuple[str, int, dict]]:
    """(label, threads, OpenMP environment) of each configuration measured."""
    return [
        (f"{cores} threads, libgomp default wait (long spin)", cores, {}),
        ("1 thread", 1, {}),
        (f"{cores} threads, OMP_WAIT_POLICY=PASSIVE (fastscale's default when busy)", cores,
         {"OMP_WAIT_POLICY": "PASSIVE"}),
        (f"{cores} threads, GOMP_SPINCOUNT=10000 (fastscale's default when quiet)", cores,
         {"GOMP_SPINCOUNT": "10000"}),
        (f"{cores} threads, GOMP_SPINCOUNT=1000", cores, {"GOMP_SPINCOUNT": "1000"}),
    ]  # fmt: skip


def run_one(args, threads: int, omp_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SPIN_VARS}
    env.update(omp_env)
    argv = [sys.executable, "-c", CHILD, args.model, str(args.resolution), str(args.batch_size)]
    argv += [str(threads), str(args.budget)]
    load = os.getloadavg()[0]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def busy_processes(n: int) -> list:
    """`--busy N`: N processes spinning in pure Python, a reproducible "loaded" machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _rounds(args, cores: int, runs: dict) -> None:
    """Every configuration once per round, rounds alternating (drifting load hits each alike)."""
    for r in range(args.rounds):
        for label, threads, omp_env in configs(cores):
            res = run_one(args, threads, omp_env)
            runs[label].append(res)
            print(
                f"round {r + 1} {label}: {res['images'] / res['wall']:.0f} img/s wall, "
                f"{res['images'] / res['cpu']:.0f} img/CPU-s, load {res['load']:.1f}",
                file=sys.stderr,
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="RegNetY-200MF")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budget", type=float, default=15.0, help="Timed seconds per run.")
    p.add_argument("--busy", type=int, default=0, help="Busy processes to run meanwhile.")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from trials.training.recipe import available_cpus

    cores = available_cpus()
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in configs(cores)}
    busy = busy_processes(args.busy)
    try:
        _rounds(args, cores, runs)
    finally:
        for proc in busy:
            proc.kill()
    rows = []
    for label, rs in runs.items():
        rows.append(
            {
                "config": label,
                "img_per_s_wall": statistics.median(x["images"] / x["wall"] for x in rs),
                "img_per_cpu_s": statistics.median(x["images"] / x["cpu"] for x in rs),
                "load_1min": [round(x["load"], 1) for x in rs],
            }
        )
    base = rows[0]["img_per_s_wall"]
    if args.json:
        print(json.dumps({"model": args.model, "cores": cores, "rows": rows}, indent=2))
        return
    print(f"{args.model} at {args.resolution} px, batch {args.batch_size}, {cores} cores")
    print("| configuration | img/s (wall) | vs default | img per CPU-second | load (1 min) |")
    print("|---|---|---|---|---|")
    for r in rows:
        loads = ", ".join(f"{x:g}" for x in r["load_1min"])
        print(
            f"| {r['config']} | {r['img_per_s_wall']:.0f} | {r['img_per_s_wall'] / base:.1f}× "
            f"| {r['img_per_cpu_s']:.0f} | {loads} |"
        )


if __name__ == "__main__":
    main()
