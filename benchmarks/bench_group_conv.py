"""Why grouped convs get a per-group cost (`gconv.slots`, docs/planner.md "Shape-aware
costs"): one 3×3 conv's training step (forward + backward) on one CPU thread at several group
widths, in process CPU seconds (run by hand).

    python benchmarks/bench_group_conv.py [--batch-size 16] [--repeats 5]

Per shape (channels, map size) and group width it prints the fastest of `--repeats` steps,
nanoseconds per multiply-add and per output element. On the 2-core VM of docs/planner.md a
group width of 2 cost 2-4× the time per output element of group width 8-16 at a quarter of
their multiply-adds: per multiply-add it is 10-30× dearer, which no per-flop cost can price.
"""

from __future__ import annotations

import argparse
import time

import torch

SHAPES = ((64, 32), (128, 16), (256, 8))  # (channels, map size): a RegNet stage each
GROUP_WIDTHS = (1, 2, 4, 8, 16, 32, 64)


def step_seconds(channels: int, size: int, group_width: int, batch: int, repeats: int) -> float:
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=channels // group_width,
                           bias=False)  # fmt: skip
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        conv(x).sum().backward()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'channels':>8s} {'map':>4s} {'gw':>3s} {'ms':>7s} {'ns/MAC':>7s} {'ns/output':>9s}")
    for channels, size in SHAPES:
        for gw in GROUP_WIDTHS:
            s = step_seconds(channels, size, gw, args.batch_size, args.repeats)
            outputs = args.batch_size * channels * size * size
            macs = 3 * outputs * gw * 9  # forward, and twice that backward
            print(f"{channels:8d} {size:4d} {gw:3d} {s * 1e3:7.2f} {s / macs * 1e9:7.3f} "
                  f"{s / outputs * 1e9:9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
