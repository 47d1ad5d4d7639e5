"""Runtime and memory predictions for traced networks fastscale did not define (run by hand).

    python benchmarks/bench_traced.py [--batch-size 16] [--rounds 2] [--profile FILE]

1. calibrate an `ops` profile on this CPU with `fastscale calibrate`'s diverse set (RegNet
   X/Y/Z, EfficientNet, ResNet; process CPU clock, one thread);
2. trace held-out networks built from torch.nn (MobileNetV2-like inverted-residual networks
   with ReLU at two widths and resolutions, and a ConvNeXt-like network) with `spaces.trace`,
   time their training steps the same way (fastest of `--rounds`), measure their peak step
   memory, and print each prediction's relative error, or the profile's refusal (a kind
   the calibration never ran, such as LayerNorm or GELU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from planner.profiles import load_profile
from spaces.trace import trace_module
from tests import trace_models
from trials.timing.calibrate import calibrate
from trials.timing.step_time import _measure
from trials.training.device import torch_threads


def _inplace(model):
    """In-place ReLUs, as fastscale's own blocks (and torchvision's MobileNetV2) use."""
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = True
    return model


HELD_OUT = [
    ("mobilenet-like w16 relu", lambda: trace_models.mobilenet_like(16, relu6=False), 64),
    ("mobilenet-like w32 relu", lambda: trace_models.mobilenet_like(32, relu6=False), 48),
    ("mobilenet-like w24 relu", lambda: trace_models.mobilenet_like(24, relu6=False), 32),
    ("  same, in-place ReLU", lambda: _inplace(trace_models.mobilenet_like(16, relu6=False)), 64),
    ("  same, in-place ReLU", lambda: _inplace(trace_models.mobilenet_like(32, relu6=False)), 48),
    ("  same, in-place ReLU", lambda: _inplace(trace_models.mobilenet_like(24, relu6=False)), 32),
    ("mobilenet-like w16 relu6", lambda: trace_models.mobilenet_like(16), 64),
    ("convnext-like w32", lambda: trace_models.convnext_like(32), 64),
]


def _time(model, resolution, batch, rounds):
    spec = SimpleNamespace(in_channels=3, resolution=resolution, num_classes=10)
    best, peak = float("inf"), None
    for r in range(rounds):
        times, mem = _measure(model, spec, batch, torch.device("cpu"), "train", 3, 1,
                              time.process_time, memory=r == 0)  # fmt: skip
        best, peak = min(best, sorted(times)[1]), peak or mem
    return best, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", help="A profile file: reused if it exists, else written.")
    args = ap.parse_args()
    if args.profile and Path(args.profile).exists():
        prof = load_profile(args.profile)
    else:
        tic = time.time()
        cal = calibrate(batch_size=args.batch_size, threads=1, clock="cpu", rounds=args.rounds,
                        out=args.profile)  # fmt: skip
        prof = cal.profile
        print(f"calibrated on {len(cal.rows)} models in {time.time() - tic:.0f} s")
    print(f"profile kinds: {', '.join(prof.kinds)}")
    print(f"{'model':28s} {'measured ms':>11s} {'pred ms':>8s} {'err':>7s} "
          f"{'mem MB':>7s} {'pred MB':>7s} {'err':>7s}")  # fmt: skip
    for name, build, res in HELD_OUT:
        torch.manual_seed(0)
        model = build()
        traced = trace_module(model, (3, res, res), name)
        try:
            priced = prof.price(traced.ops, args.batch_size)
        except Exception as exc:  # the refusal is the result for kinds never calibrated
            print(f"{name:28s} refused: {exc}")
            continue
        with torch_threads(1):
            seconds, peak = _time(model, res, args.batch_size, args.rounds)
        pred, mem = float(priced["seconds_per_step"]), float(priced["memory_bytes"])
        print(f"{name:28s} {seconds * 1e3:11.1f} {pred * 1e3:8.1f} {pred / seconds - 1:+7.1%} "
              f"{peak / 1e6:7.1f} {mem / 1e6:7.1f} {mem / peak - 1:+7.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
