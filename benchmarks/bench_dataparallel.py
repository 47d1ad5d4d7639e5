"""Data-parallel training throughput on this machine (docs/training.md, "Data-parallel
training"; docs/studies.md, "Multi-GPU and multi-node trials").

    python benchmarks/bench_dataparallel.py [--model RegNetX-200MF] [-r 32] [--batch 128]
        [--images 2048] [--steps 12]

1. images/s of `train()` (the training loop's own clock, `images_per_s`) with one process
   and with 2 data-parallel workers (gloo on CPU, NCCL on CUDA, through a local Ray), same
   global batch, one thread per worker; one epoch over `--images` Fashion-MNIST images.
2. The all-reduce share of a step: two gloo processes time `--steps` DDP training steps
   with the gradient all-reduce and as many under `no_sync()` (none); the share is
   1 − t(no_sync) / t(sync), the step time the communication adds after DDP's overlap.
   The bare all-reduce of a buffer the size of the gradients is timed beside it.

Run it on a quiet machine and print `uptime` beside the figures: on shared cores the load
of others dominates.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def throughput(model: str, resolution: int, batch: int, images: int, workers: int) -> float:
    from spaces.io import resolve_spec
    from trials.training.parallel import ParallelConfig
    from trials.training.recipe import TrainConfig
    from trials.training.train import train

    config = TrainConfig(
        epochs=1, batch_size=batch, train_size=images, val_size=64, resolution=resolution,
        precise_bn=0, threads=1, seed=0,
    )  # fmt: skip
    result = train(resolve_spec(model), config, parallel=ParallelConfig(workers=workers))
    return float(result["images_per_s"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, args, queue) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    from spaces.build import build_model
    from spaces.io import resolve_spec
    from trials.data.catalogue import trained_spec

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)  # fmt: skip
    spec = trained_spec(resolve_spec(args.model), "fashion-mnist", args.resolution)
    torch.manual_seed(0)
    model = build_model(spec)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    b = args.batch // world
    x = torch.randn(b, spec.in_channels, args.resolution, args.resolution)
    y = torch.randint(0, spec.num_classes, (b,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(ddp(x), y).backward()
        opt.step()

    def timed(sync: bool) -> float:
        times = []
        for _ in range(args.steps):
            dist.barrier()
            tic = time.perf_counter()
            if sync:
                step()
            else:
                with ddp.no_sync():
                    step()
            times.append(time.perf_counter() - tic)
        return statistics.median(times[2:])  # the first steps warm up

    with_sync, without = timed(True), timed(False)
    grads = torch.zeros(sum(p.numel() for p in model.parameters()))
    bare = []
    for _ in range(args.steps):
        dist.barrier()
        tic = time.perf_counter()
        dist.all_reduce(grads)
        bare.append(time.perf_counter() - tic)
    if rank == 0:
        queue.put({"step_s": with_sync, "step_no_allreduce_s": without,
                   "allreduce_share": 1 - without / with_sync,
                   "bare_allreduce_s": statistics.median(bare),
                   "gradient_mb": grads.numel() * 4 / 2**20})  # fmt: skip
    dist.destroy_process_group()


def allreduce_share(args) -> dict:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, args, queue)) for r in range(2)]
    for p in procs:
        p.start()
    out = queue.get(timeout=1800)
    for p in procs:
        p.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="RegNetX-200MF")
    parser.add_argument("-r", "--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    figures = {"model": args.model, "resolution": args.resolution, "global_batch": args.batch,
               "cpus": os.cpu_count(), "load_before": os.getloadavg()}  # fmt: skip
    for n in (1, 2):
        figures[f"images_per_s_{n}"] = throughput(
            args.model, args.resolution, args.batch, args.images, n
        )
        print(f"{n} worker(s): {figures[f'images_per_s_{n}']:.0f} img/s", flush=True)
    figures.update(allreduce_share(args))
    figures["load_after"] = os.getloadavg()
    print(f"all-reduce share of a 2-worker step: {figures['allreduce_share']:.1%} "
          f"(step {figures['step_s'] * 1e3:.0f} ms, without all-reduce "
          f"{figures['step_no_allreduce_s'] * 1e3:.0f} ms; bare all-reduce of "
          f"{figures['gradient_mb']:.1f} MB: {figures['bare_allreduce_s'] * 1e3:.1f} ms)")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
