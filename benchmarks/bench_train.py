"""Training and calibration benchmarks (run by hand, on a quiet machine):

    python benchmarks/bench_train.py                  # both
    python benchmarks/bench_train.py throughput       # train() vs a plain PyTorch loop
    python benchmarks/bench_train.py calibrate        # RegNetY-200MF at 64 px on this CPU

1. Training throughput (images/s, training loop only) of `trials.training.train.train` against a
   plain loop (forward, cross-entropy, backward, SGD step) over the same module and the same
   in-memory batches. Goal: within 10 %. Rounds alternate so drifting load hits both.
2. `fastscale calibrate RegNetY-200MF --resolution 64` equivalent: Pearson r of time vs
   acts / flops / params and how many held-out models the leave-one-out fit predicts
   within ±10 %.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from spaces.build import build_model
from spaces.registry import get_model
from trials.data.catalogue import trained_spec
from trials.data.datasets import load_dataset
from trials.training.device import torch_threads
from trials.training.recipe import TrainConfig
from trials.training.train import train


def plain_loop(spec, data, batch_size: int, threads: int, seed: int) -> tuple[float, float]:
    """Images/s (wall, CPU) of the simplest correct loop over the same module and batches."""
    with torch_threads(threads):
        torch.manual_seed(seed)
        model = build_model(spec)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        seen = 0
        tic, cpu = time.perf_counter(), time.process_time()
        for x, y in data.train.batches(batch_size, shuffle=True, seed=seed, drop_last=True):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
        return seen / (time.perf_counter() - tic), seen / (time.process_time() - cpu)


def throughput(args) -> None:
    spec0 = get_model(args.model)
    data = load_dataset("fashion-mnist", args.resolution, train_size=args.images, val_size=16)
    spec = trained_spec(spec0, "fashion-mnist", args.resolution)
    base = TrainConfig(
        epochs=1,
        batch_size=args.batch_size,
        train_size=args.images,
        val_size=16,
        resolution=args.resolution,
        threads=args.threads,
        precise_bn=0,
    )
    variants = {
        "train() full recipe": base,
        "train() no EMA/mixup": base.replace(ema=False, mixup=0.0),
    }
    results = {"plain loop": [], **{k: [] for k in variants}}
    cpu = {k: [] for k in results}
    print(
        f"{args.model} at {args.resolution}px, batch {args.batch_size}, {args.images} images, "
        f"{args.threads} thread(s), {args.rounds} alternating rounds",
        flush=True,
    )
    for _ in range(args.rounds):
        wall, per_cpu = plain_loop(spec, data, args.batch_size, args.threads, 0)
        results["plain loop"].append(wall)
        cpu["plain loop"].append(per_cpu)
        for name, config in variants.items():
            c0 = time.process_time()  # whole call: model build + loop + a 16-image eval
            r = train(spec0, config, data=data)
            seen = r["epochs"][0]["images_per_s"] * r["epochs"][0]["epoch_time"]
            cpu[name].append(seen / (time.process_time() - c0))
            results[name].append(r["epochs"][0]["images_per_s"])
    ref = statistics.median(results["plain loop"])
    ref_cpu = statistics.median(cpu["plain loop"])
    for name, values in results.items():
        med, med_cpu = statistics.median(values), statistics.median(cpu[name])
        print(
            f"  {name:24s} {med:8.1f} img/s wall (runs {', '.join(f'{v:.0f}' for v in values)})"
            f" {med / ref - 1:+.1%} vs plain; {med_cpu:7.1f} img per CPU-s"
            f" {med_cpu / ref_cpu - 1:+.1%}"
        )


def calibration(args) -> None:
    from trials.timing.calibrate import calibrate
    from trials.timing.protocol import TimingProtocol

    spec = get_model("RegNetY-200MF").with_resolution(args.cal_resolution)
    tic = time.perf_counter()
    result = calibrate(
        spec,
        strategies=["w", "dwr", "dWr"],
        factors=[1, 2, 4, 8],
        batch_size=args.cal_batch,
        threads=args.cal_threads or args.threads,
        protocol=TimingProtocol(rounds=args.cal_rounds),  # the one protocol's rule
        diverse=False,  # the single-base calibration this benchmark has always measured
        progress=lambda line: print("  " + line, flush=True),
    )
    print(
        f"calibrate RegNetY-200MF at {args.cal_resolution}px, rounds {args.cal_rounds}: "
        f"{time.perf_counter() - tic:.0f}s"
    )
    for line in result.summary_lines()[:-1]:
        print("  " + line)
    errs = ", ".join(
        f"{r['name']} {e:.1%}" for r, e in zip(result.rows, result.loo_errors, strict=False)
    )
    print(f"  leave-one-out errors: {errs}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", nargs="*", default=["throughput", "calibrate"])
    p.add_argument("--model", default="RegNetX-200MF")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cal-resolution", type=int, default=64)
    p.add_argument("--cal-batch", type=int, default=32)
    p.add_argument("--cal-rounds", type=int, default=3)
    p.add_argument("--cal-threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads is None:
        from trials.training.recipe import available_cpus

        args.threads = available_cpus()
    if "throughput" in args.what:
        throughput(args)
    if "calibrate" in args.what:
        calibration(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
