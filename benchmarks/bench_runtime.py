"""Runtime and memory predictions on models the calibration never saw (run by hand).

    python benchmarks/bench_runtime.py [--batch-size 16] [--save rows.json | --load rows.json]

1. time the diverse calibration set of `fastscale calibrate`, the old single-base
   calibration (RegNetY-200MF scaled by w, dwr, dWr × 1, 2, 4, linear acts + flops fit) and
   the held-out models (other RegNet bases and sizes, models scaled from other bases with
   w / dwr / dWr / d, EfficientNets, RegNetZ, ResNets), with their peak step memory. Process
   CPU clock, one thread, under the timing protocol of `fastscale time` and `calibrate`
   (`trials.timing.protocol`: `--rounds` interleaved rounds, default 3, later rounds
   shuffled, warm-up until steady), and its time is the fastest round: on a shared host even
   one process' CPU seconds vary by 5-8 % from one second to the next (a VM's neighbours
   share its caches and memory bandwidth) and other work only ever adds time. The spread
   of the rounds is printed: it is the measurement's own noise, a floor under any model's
   error;
2. fit the operation model on the calibration rows (`fit_ops_profile`, what `calibrate`
   does) and the linear fits;
3. print, per family and overall, for the old linear fit, the linear fit of the diverse set
   and the operation model: share within ±10 % and ±5 %, Pearson r, median and max error;
   memory the same way (operation model only: the linear kind has none);
4. how long the operation model takes to price 10k candidate networks (the plan's
   vectorized face).

`--save` keeps every timing so `--load` can re-fit and re-print without timing again.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from planner.profiles.opfit import fit_ops_profile
from planner.scale import scale_spec
from spaces.registry import get_model
from spaces.specs import spec_from_dict

RES = 64
# (family, name, spec builder): none of these networks is in the calibration set
HELD_OUT = [
    *[
        ("regnetx", f"RegNetX-{s}", (f"RegNetX-{s}", None, 1, RES))
        for s in ("200MF", "400MF", "800MF")
    ],
    *[
        ("regnety", f"RegNetY-{s}", (f"RegNetY-{s}", None, 1, RES))
        for s in ("200MF", "400MF", "800MF", "1.6GF")
    ],
    ("regnety", "RegNetY-200MF w x4", ("RegNetY-200MF", "w", 4, RES)),
    ("regnety", "RegNetY-200MF d x4", ("RegNetY-200MF", "d", 4, RES)),
    ("regnety", "RegNetY-400MF dwr x3", ("RegNetY-400MF", "dwr", 3, RES)),
    ("regnety", "RegNetY-800MF dWr x2", ("RegNetY-800MF", "dWr", 2, 48)),
    ("regnetx", "RegNetX-200MF dWr x4", ("RegNetX-200MF", "dWr", 4, RES)),
    ("regnetx", "RegNetX-400MF dwr x2", ("RegNetX-400MF", "dwr", 2, 48)),
    ("regnetx", "RegNetX-1.6GF w x2", ("RegNetX-1.6GF", "w", 2, 32)),
    ("efficientnet", "EfficientNet-B1", ("EfficientNet-B1", None, 1, RES)),
    ("efficientnet", "EfficientNet-B2", ("EfficientNet-B2", None, 1, 48)),
    ("efficientnet", "EfficientNet-B0 w x2", ("EfficientNet-B0", "w", 2, 48)),
    ("efficientnet", "EfficientNet-B0 d x2", ("EfficientNet-B0", "d", 2, RES)),
    ("regnetz", "RegNetZ-500MF", ("RegNetZ-500MF", None, 1, RES)),
    ("regnetz", "RegNetZ-4GF", ("RegNetZ-4GF", None, 1, 32)),
    ("regnetz", "RegNetZ-500MF dWr x2", ("RegNetZ-500MF", "dWr", 2, 48)),
    ("resnet", "ResNet-34", ("ResNet-34", None, 1, 32)),
    ("resnet", "ResNeXt-50-32x4d", ("ResNeXt-50-32x4d", None, 1, 32)),
]


def held_out_spec(model, strategy, factor, res):
    spec = get_model(model).with_resolution(res)
    return spec if strategy is None else scale_spec(spec, strategy, factor)


def time_all(args) -> dict:
    """Every model under the timing protocol of `time` and `calibrate`
    (`trials.timing.protocol`): interleaved rounds, each in a seeded shuffled order."""
    from trials.timing.calibration_set import calibration_set, scaled_copies
    from trials.timing.load import load_line
    from trials.timing.protocol import DEFAULT, TimingProtocol
    from trials.timing.step_time import time_models

    protocol = TimingProtocol(rounds=args.rounds, steps=args.steps or DEFAULT.steps)
    opts = dict(batch_size=args.batch_size, threads=1, clock="cpu")
    jobs = [("calibration", m.name, m.family, m.spec) for m in calibration_set()]
    old_base = get_model("RegNetY-200MF").with_resolution(RES)
    for m in scaled_copies(old_base, ["w", "dwr", "dWr"], [1, 2, 4], "RegNetY-200MF"):
        jobs.append(("old_calibration", m.name, "regnety", m.spec))
    jobs += [("held_out", name, fam, held_out_spec(*a)) for fam, name, a in HELD_OUT]
    out = {"batch": args.batch_size, "rounds": args.rounds, "protocol": protocol.to_dict(),
           "calibration": [], "old_calibration": [], "held_out": []}  # fmt: skip
    tic = time.perf_counter()

    def say(i, rnd, r):
        group, name, _, spec = jobs[i]
        print(
            f"[round {rnd + 1}/{args.rounds}] {group} {name}@{spec.resolution}: "
            f"{r['seconds_per_batch'] * 1e3:.1f} ms/step, {time.perf_counter() - tic:.0f} s",
            flush=True,
        )

    timed, load = time_models([j[3] for j in jobs], protocol, memory=True, progress=say, **opts)
    print(load_line(load))
    out["load"] = load
    for (group, name, family, spec), t in zip(jobs, timed, strict=True):
        out[group].append(
            {
                "name": name,
                "family": family,
                "resolution": spec.resolution,
                "spec": spec.to_dict(),
                **{k: t[k] for k in ("flops", "params", "acts", "memory_bytes", "spread")},
                "rounds_seconds": t["rounds"],
            }
        )
    return out


def _corrected(data: dict) -> dict:
    """Each model's time: the fastest of its rounds (other work only ever adds time)."""
    for group in ("calibration", "old_calibration", "held_out"):
        for r in data[group]:
            r["seconds_per_step"] = min(r["rounds_seconds"])
    return data


def summary(pred, meas) -> dict:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    err = np.abs(pred - meas) / meas
    r = float(np.corrcoef(pred, meas)[0, 1]) if len(meas) > 2 else float("nan")
    return {
        "n": len(meas),
        "within10": float(np.mean(err <= 0.10)),
        "within5": float(np.mean(err <= 0.05)),
        "r": r,
        "median": float(np.median(err)),
        "max": float(err.max()),
    }


def noise(data: dict) -> None:
    """How far one timing of a network lands from its fastest round: the measurement's noise."""
    rel = np.array([t / min(r["rounds_seconds"]) - 1 for g in ("calibration", "old_calibration",
                    "held_out") for r in data[g] for t in r["rounds_seconds"]])  # fmt: skip
    print(
        f"measurement noise ({data.get('rounds', 1)} rounds per model): a single timing is "
        f"{np.median(rel):.1%} (median) / {np.percentile(rel, 90):.1%} (90th percentile) above "
        f"the model's fastest round; {np.mean(rel > 0.10):.0%} of single timings are > 10 % above"
    )


def _by_family(held: list[dict]) -> list[tuple[str, list[int]]]:
    """(family, row indices) per family of the held-out rows, then ("all", every row)."""
    fams = sorted({h["family"] for h in held})
    return [
        (f, [i for i, h in enumerate(held) if f in ("all", h["family"])]) for f in [*fams, "all"]
    ]


def report(data: dict) -> None:
    data = _corrected(data)
    if data.get("rounds", 1) > 1:
        noise(data)
    batch = data["batch"]
    new = fit_ops_profile(data["calibration"], batch=batch)
    old = fit_ops_profile(data["old_calibration"], batch=batch)
    held = data["held_out"]
    meas = np.array([h["seconds_per_step"] for h in held])
    specs = [spec_from_dict(h["spec"]) for h in held]
    acts = np.array([h["acts"] for h in held], float)
    flops = np.array([h["flops"] for h in held], float)
    models = {
        "old linear (RegNetY-200MF scaled)": old.predict(acts, flops) * batch,
        "linear, diverse set": new.predict(acts, flops) * batch,
        "operation model": np.array([new.price(s)["seconds_per_step"] for s in specs]),
    }
    by_family = _by_family(held)
    print(f"\nheld-out step time, batch {batch}, one thread, CPU clock ({len(held)} models)")
    print(
        f"{'model':36s} {'family':13s} {'n':>3s} {'±10%':>6s} {'±5%':>6s} {'r':>7s} {'median':>7s} {'max':>7s}"
    )
    for label, pred in models.items():
        for fam, idx in by_family:
            s = summary(pred[idx], meas[idx])
            print(
                f"{label:36s} {fam:13s} {s['n']:3d} {s['within10']:6.0%} {s['within5']:6.0%} "
                f"{s['r']:7.3f} {s['median']:7.1%} {s['max']:7.1%}"
            )
    print("\nper model: measured ms/step, error of old linear / diverse linear / operation model")
    for i, h in enumerate(held):
        errs = " ".join(f"{(p[i] - meas[i]) / meas[i]:+7.1%}" for p in models.values())
        print(f"  {h['name'] + '@' + str(h['spec']['resolution']):32s} {meas[i] * 1e3:8.1f} {errs}")
    mem = np.array([h["memory_bytes"] for h in held], float)
    mpred = np.array([new.price(s)["memory_bytes"] for s in specs])
    print("\nheld-out peak training-step memory (operation model)")
    for fam, idx in by_family:
        s = summary(mpred[idx], mem[idx])
        print(
            f"  {fam:13s} n={s['n']:2d} ±10% {s['within10']:5.0%} ±5% {s['within5']:5.0%} "
            f"r {s['r']:.3f} median {s['median']:.1%} max {s['max']:.1%}"
        )
    fit = new.fit
    print(
        f"\ncalibration: {fit['time']['n']} models, held-out (leave-one-out) time error mean "
        f"{fit['time']['loo_mean_rel_error']:.1%}, memory {fit['memory']['loo_mean_rel_error']:.1%}"
    )
    if "calibrate_cpu_s" in data:
        print(
            f"calibrate time: {data['calibrate_cpu_s']:.0f} s CPU, {data['calibrate_wall_s']:.0f} s wall"
        )
    price_speed(new)


def price_speed(profile) -> None:
    """Pricing 10k candidates of one base with the vectorized op walk."""
    from spaces.op_walk import stages_ops_batch

    base = get_model("RegNetY-4.0GF").stages()
    rng = np.random.default_rng(0)
    n = 10_000
    depths = np.array(base.depths) * rng.integers(1, 3, (n, 4))
    widths = np.array(base.widths) * rng.integers(1, 3, (n, 4))
    groups = np.broadcast_to(np.array(base.group_widths), (n, 4))
    times = []
    for _ in range(5):
        tic = time.perf_counter()
        ops = stages_ops_batch(base, depths, widths, groups, 224)
        profile.price(ops)
        times.append(time.perf_counter() - tic)
    print(f"pricing 10k candidates: median {np.median(times) * 1e3:.1f} ms (wall)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, help="Timed steps per round [protocol default].")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds per model.")
    parser.add_argument("--save", help="Write every timing to this JSON file.")
    parser.add_argument("--load", help="Re-fit and report from a --save file (no timing).")
    args = parser.parse_args()
    if args.load:
        with open(args.load) as f:
            data = json.load(f)
    else:
        data = time_all(args)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(data, f)
    report(data)


if __name__ == "__main__":
    main()
