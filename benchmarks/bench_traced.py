"""Runtime and memory predictions for traced networks fastscale did not define (run by hand).

    python benchmarks/bench_traced.py [--batch-size 16] [--rounds 3] [--profile FILE]
    python benchmarks/bench_traced.py --quick    # a smoke run: tiny models, seconds
    python benchmarks/bench_traced.py --memory-only --profile tests/data/cpu-b16.json

1. calibrate an `ops` profile on this CPU (process CPU clock, one thread) with
   `fastscale calibrate`'s diverse set (RegNet X/Y/Z, EfficientNet, ResNet) plus, through
   `--add`, one ConvNeXt-like network (LayerNorm, GELU, linear MLP) and one MobileNetV2-like
   network with ReLU6, at the set's resolutions (docs/planner.md, "Outside models");
2. time held-out traced networks the calibration never saw (other widths and resolutions of
   both, ReLU and in-place ReLU MobileNet-like nets, a plain convnet) with `time_models`
   under the same protocol (interleaved rounds, fastest kept), peak step memory measured;
3. print each prediction's relative error, the share within ±10 % and the median signed
   error, for time and for memory.

`--memory-only` times nothing (about half a minute): it refits the memory model of an
existing profile's rows (`--profile`, its memory measured when it was calibrated) with the
current features and compares the profile's own and the refitted prediction with the
measured peak step memory of each held-out network (memory does not depend on the load).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from planner.profiles import load_profile
from planner.profiles.opfit import fit_ops_profile
from planner.profiles.opmodel import MEMORY_FEATURES, feature_matrix
from spaces.registry import get_model
from trials.timing.calibrate import calibrate
from trials.timing.load import load_line
from trials.timing.memory import measure_step_memory
from trials.timing.outside import OutsideModel
from trials.timing.protocol import TimingProtocol
from trials.timing.step_time import time_models

ADDED = ("examples.nets:convnext_like", "examples.nets:mobilenet_like")  # default kwargs
NETS, TESTS = "examples.nets", "tests.trace_models"


def held_out(scale: float = 1.0) -> list[tuple[str, OutsideModel]]:
    """(label, model) of networks the calibration did not time; `scale` shrinks resolutions."""

    def at(r):
        return max(16, round(r * scale / 8) * 8)

    def m(factory, r, **kwargs):
        return OutsideModel(factory, (3, at(r), at(r)), kwargs)

    return [
        ("convnext-like w24", m(f"{NETS}:convnext_like", 56, width=24)),
        ("convnext-like w48", m(f"{NETS}:convnext_like", 40, width=48)),
        ("mobilenet-like w24 relu6", m(f"{NETS}:mobilenet_like", 56, width=24)),
        ("mobilenet-like w12 relu6", m(f"{NETS}:mobilenet_like", 48, width=12)),
        ("mobilenet-like w16 relu", m(f"{NETS}:mobilenet_like", 64, width=16, relu6=False)),
        ("mobilenet-like w32 relu", m(f"{NETS}:mobilenet_like", 48, width=32, relu6=False)),
        ("  same, in-place ReLU", m(f"{TESTS}:mobilenet_inplace", 64, width=16)),
        ("  same, in-place ReLU", m(f"{TESTS}:mobilenet_inplace", 48, width=32)),
        ("plain convnet w16", m(f"{TESTS}:plain_convnet", 64, width=16)),
        ("plain convnet w32", m(f"{TESTS}:plain_convnet", 48, width=32)),
    ]


def _calibrate(args, protocol):
    if args.profile and Path(args.profile).exists():
        return load_profile(args.profile)
    tic = time.time()
    settings = dict(batch_size=args.batch_size, threads=1, clock="cpu", protocol=protocol)
    if args.quick:  # one RegNet's copies at 16 px instead of the diverse set
        base = get_model("RegNetX-200MF").with_resolution(16)
        cal = calibrate(base, ["w"], [2], diverse=False, resolution=16, add=ADDED, **settings)
    else:
        cal = calibrate(add=ADDED, out=args.profile, progress=print, **settings)
    print(f"calibrated on {len(cal.rows)} models in {time.time() - tic:.0f} s; "
          f"held-out time error mean {cal.profile.loo_mean_rel_error:.1%}")  # fmt: skip
    return cal.profile


def _summary(what: str, errors: list[float]) -> str:
    if not errors:
        return f"{what}: nothing priced"
    within = sum(abs(e) <= 0.10 for e in errors)
    return (f"{what}: {within}/{len(errors)} within ±10 %, median signed error "
            f"{statistics.median(errors):+.1%}, max |error| {max(map(abs, errors)):.1%}")  # fmt: skip


def _memory_only(profile_path: str, batch: int) -> None:
    prof = load_profile(profile_path)
    refit = fit_ops_profile(list(prof.rows), batch=prof.batch, precision=prof.precision)
    names = list(refit.memory)
    print(f"refitted memory costs: {refit.memory}")
    print(f"{'model':26s} {'res':>3s} {'peak MB':>8s} {'profile':>8s} {'refit':>8s}")
    errors = []
    for label, model in held_out():
        ops = model.trace().ops
        try:
            own = float(prof.price(ops, batch)["memory_bytes"])
        except Exception:  # a kind it never ran (its time model refuses the network)
            own = None
        pred = feature_matrix(ops, batch, MEMORY_FEATURES, names) @ list(refit.memory.values())
        torch.manual_seed(0)
        x, y = torch.randn(batch, *model.input_shape), torch.zeros(batch, dtype=torch.long)
        peak = measure_step_memory(model.build(), x, y, torch.device("cpu"))
        errors.append(float(pred) / peak - 1)
        old = "refused" if own is None else f"{own / peak - 1:+.1%}"
        print(f"{label:26s} {model.resolution:3d} {peak / 1e6:8.1f} {old:>8s} {errors[-1]:+8.1%}")
    print(_summary("memory, refitted", errors))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", help="A profile file: reused if it exists, else written.")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run (seconds).")
    ap.add_argument("--memory-only", action="store_true", help="Refit --profile's memory only.")
    args = ap.parse_args()
    if args.memory_only:
        torch.set_num_threads(1)
        _memory_only(args.profile, args.batch_size)
        return
    if args.quick:
        args.batch_size, protocol = 2, TimingProtocol(steps=1, rounds=1, max_warmup=1)
    else:
        protocol = TimingProtocol(rounds=args.rounds)
    prof = _calibrate(args, protocol)
    print(f"profile kinds: {', '.join(prof.kinds)}")
    models = held_out(0.25 if args.quick else 1.0)
    priced, refused = [], []
    for label, model in models:
        try:
            priced.append((label, model, prof.price(model.trace().ops, args.batch_size)))
        except Exception as exc:  # a kind the calibration never ran: the refusal is the result
            refused.append(f"{label:26s} refused: {exc}")
    timed, load = time_models(
        [m for _, m, _ in priced], protocol, memory=True, batch_size=args.batch_size,
        threads=1, clock="cpu",
    )  # fmt: skip
    print(f"{'model':26s} {'res':>3s} {'measured ms':>11s} {'pred ms':>8s} {'err':>7s} "
          f"{'mem MB':>7s} {'pred MB':>7s} {'err':>7s}")  # fmt: skip
    time_err, mem_err = [], []
    for (label, model, p), t in zip(priced, timed, strict=True):
        pred, mem = float(p["seconds_per_step"]), float(p["memory_bytes"])
        seconds, peak = t["seconds_per_batch"], t["memory_bytes"]
        time_err.append(pred / seconds - 1)
        mem_err.append(mem / peak - 1)
        print(f"{label:26s} {model.resolution:3d} {seconds * 1e3:11.1f} {pred * 1e3:8.1f} "
              f"{time_err[-1]:+7.1%} {peak / 1e6:7.1f} {mem / 1e6:7.1f} {mem_err[-1]:+7.1%}")  # fmt: skip
    for line in refused:
        print(line)
    print(_summary("time", time_err))
    print(_summary("memory", mem_err))
    print(f"held-out timing: {load_line(load)}")


if __name__ == "__main__":
    main()
