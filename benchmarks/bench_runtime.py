"""Runtime predictions as a user gets them: `fastscale calibrate`, then `fastscale profile
predict` against `fastscale time` on models the calibration never saw (run by hand).

Full run (≈ 15 min on one core; run it on a quiet machine, it prints the load beside every
step):

    PYTHONPATH=. python benchmarks/bench_runtime.py --save runtime.json

Re-print from the saved results without timing again: `--load runtime.json`. A smoke check
of the whole path at 32 px (≈ 1 min): `--quick`, a `--spec-only` calibration (the SPEC and
3 scaled copies) and three held-out RegNets (no "other" family: a SPEC-only profile refuses
networks with operations it never timed, EfficientNet's depthwise convs and SiLU).

Every step is the CLI in a subprocess, with the settings of docs/planner.md "Calibrating"
(batch 16, training step, one thread, process CPU clock, the timing protocol's defaults:
3 interleaved rounds, a model's time its fastest round):

1. `fastscale calibrate RegNetY-200MF -r 64 --clock cpu --threads 1 --batch-size 16
   --mode train --out DIR/cal-K.json --json` (the diverse set plus the SPEC scaled by
   w/dwr/dWr × 1, 2, 4, 8), `--runs` times (default 2);
2. `fastscale time SPEC HELD-OUT... --clock cpu --threads 1 --batch-size 16 --mode train
   --memory --json` in one call (peak step memory too, in its first round), between the first calibration and the others, so the two
   calibrations lie minutes apart on either side of the truth they are checked against;
3. `fastscale profile predict DIR/cal-K.json SPEC HELD-OUT... --batch-size 16 --json` for
   each calibration.

Every model is a spec file written with the library (`scale_spec(...).to_dict()` as JSON)
carrying its own resolution (64, or 48/32 for the larger ones so the run stays short; r and
dwr scaling raise it, so it is part of each model's name), so
`time` and `predict` get no `-r`. Held-out models: RegNetX/Y of other sizes, RegNets scaled
by w / d / dwr / dWr, EfficientNet-B1/B2 and scaled B0s, RegNetZ, ResNet-34 and ResNeXt-50.
RegNetY-200MF at 64 px is the SPEC (timed once, first); a held-out model that is in fact
among a calibration's rows (RegNetY-200MF w x4 at 64 px: `calibrate` times the SPEC scaled by
w × 4) is listed but kept out of the statistics, so 21 models are held out.

Prints each step's wall time beside the load average before and after it (/proc/loadavg,
as `uptime` shows it) and the command's own load line; per calibration and group the share
of held-out models within ±10 %, Pearson r, the median signed error (prediction over
measured, minus 1), the largest error and how many are predicted slower / faster than measured; the SPEC's
calibrate row and prediction against `time`; each model's errors; the largest and median
disagreement of the calibrations' held-out predictions; PASS/FAIL per goal.

Groups: "same family" is RegNet X and Y (the SPEC's design spaces); "other" is RegNetZ,
EfficientNet and ResNet. Goals (docs/planner.md, "Runtime and memory model"): same family ≥ 90 % within ±10 % with
Pearson r ≥ 0.99; other families ≥ 80 % within ±10 %; median signed error of all held-out
models within ±3 %; `calibrate` and `time` agree within 3 % on the SPEC; two calibrations
agree within 3 % on every held-out prediction.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from planner.scale import scale_spec
from spaces.registry import get_model
from spaces.specs import spec_from_dict
from trials.timing.load import load_line

ROOT = Path(__file__).resolve().parents[1]
SPEC, RES, BATCH = "RegNetY-200MF", 64, 16
SETTINGS = ["--clock", "cpu", "--threads", "1", "--batch-size", str(BATCH), "--mode", "train"]
SAME = ("regnetx", "regnety")  # the SPEC's design spaces; every other family is "other"
# (family, base model, strategy or None, flop factor, resolution)
HELD_OUT = [
    *[("regnetx", f"RegNetX-{s}", None, 1, RES) for s in ("200MF", "400MF", "800MF")],
    *[("regnety", f"RegNetY-{s}", None, 1, RES) for s in ("400MF", "800MF", "1.6GF")],
    ("regnety", "RegNetY-200MF", "w", 4, RES),
    ("regnety", "RegNetY-200MF", "d", 4, RES),
    ("regnety", "RegNetY-400MF", "dwr", 3, RES),
    ("regnety", "RegNetY-800MF", "dWr", 2, 48),
    ("regnetx", "RegNetX-200MF", "dWr", 4, RES),
    ("regnetx", "RegNetX-400MF", "dwr", 2, 48),
    ("regnetx", "RegNetX-1.6GF", "w", 2, 32),
    ("efficientnet", "EfficientNet-B1", None, 1, RES),
    ("efficientnet", "EfficientNet-B2", None, 1, 48),
    ("efficientnet", "EfficientNet-B0", "w", 2, 48),
    ("efficientnet", "EfficientNet-B0", "d", 2, RES),
    ("regnetz", "RegNetZ-500MF", None, 1, RES),
    ("regnetz", "RegNetZ-4GF", None, 1, 32),
    ("regnetz", "RegNetZ-500MF", "dWr", 2, 48),
    ("resnet", "ResNet-34", None, 1, 32),
    ("resnet", "ResNeXt-50-32x4d", None, 1, 32),
]
QUICK_RES = 32
QUICK_HELD_OUT = [
    ("regnetx", "RegNetX-200MF", None, 1, QUICK_RES),
    ("regnety", "RegNetY-200MF", "d", 2, QUICK_RES),
    ("regnety", "RegNetY-400MF", None, 1, QUICK_RES),
]  # RegNets only: a SPEC-only profile refuses networks with operations it never timed
GOALS = {"same_within10": 0.90, "same_r": 0.99, "other_within10": 0.80, "median": 0.03,
         "spec_agreement": 0.03, "cal_agreement": 0.03}  # fmt: skip


def model_name(base, strategy, factor, res) -> str:
    """e.g. "RegNetY-400MF dwr x3@76": the resolution is the network's own, after scaling."""
    return f"{base}{'' if strategy is None else f' {strategy} x{factor:g}'}@{res}"


def write_specs(held_out, res: int, folder: Path) -> dict:
    """The SPEC at `res` and each held-out model as a spec file; their names and families."""
    folder.mkdir(parents=True, exist_ok=True)
    models = [("regnety", SPEC, None, 1, res), *held_out]
    out = []
    for family, base, strategy, factor, r in models:
        spec = get_model(base).with_resolution(r)
        spec = spec if strategy is None else scale_spec(spec, strategy, factor)
        name = model_name(base, strategy, factor, spec.resolution)
        path = folder / (name.replace(" ", "_").replace("@", "-") + ".json")
        path.write_text(json.dumps(spec.to_dict(), indent=1) + "\n")
        out.append({"name": name, "family": family, "file": str(path), "spec": spec.to_dict()})
    return {"spec": out[0], "held_out": out[1:]}


def loadavg() -> list[float]:
    """The 1-, 5- and 15-minute load averages (`uptime`'s), from /proc/loadavg."""
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


def fastscale(args: list[str], keep_stderr: bool = False) -> dict:
    """Run `fastscale ARGS`; its --json output, how long it took and the load around it.
    Progress goes to our stderr as it comes; with `keep_stderr` (short commands) the stderr
    is kept instead, so its warnings travel with --save."""
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    before, tic = loadavg(), time.perf_counter()
    print(f"$ fastscale {' '.join(args)}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "trials", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if keep_stderr else None,
        text=True,
    )
    wall = time.perf_counter() - tic
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr or "")
        sys.exit(f"bench_runtime: `fastscale {' '.join(args)}` exited {proc.returncode}")
    step = {"args": args, "started": started, "wall_s": wall, "loadavg": [before, loadavg()]}
    warnings = [ln for ln in (proc.stderr or "").splitlines() if "warning:" in ln]
    return {"result": json.loads(proc.stdout), "step": step, "warnings": warnings}


def run_all(args) -> dict:
    """Calibrate, time, calibrate again, predict (module doc); with --save, the results so
    far are written after every step, so a failing step keeps the minutes of timing before
    it."""
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench-runtime-"))
    res = QUICK_RES if args.quick else RES
    models = write_specs(QUICK_HELD_OUT if args.quick else HELD_OUT, res, folder)
    files = [models["spec"]["file"]] + [m["file"] for m in models["held_out"]]
    calibrate = ["calibrate", SPEC, "-r", str(res), *SETTINGS, "--json"]
    if args.quick:  # SPEC and 3 scaled copies: the smallest profile calibrate fits
        calibrate += ["--spec-only", "--factors", "2"]
    data = {"quick": args.quick, "dir": str(folder), **models, "calibrations": []}

    def save():
        if args.save:
            Path(args.save).write_text(json.dumps(data) + "\n")

    def calibrate_once(k):
        data["calibrations"].append(fastscale([*calibrate, "--out", str(folder / f"cal-{k}.json")]))
        save()

    calibrate_once(1)
    data["time"] = fastscale(["time", *files, *SETTINGS, "--memory", "--json"])
    save()
    for k in range(2, args.runs + 1):
        calibrate_once(k)
    predict = [*files, "--batch-size", str(BATCH), "--json"]
    data["predictions"] = [
        fastscale(["profile", "predict", c["result"]["profile"], *predict], keep_stderr=True)
        for c in data["calibrations"]
    ]
    save()
    return data


def step_line(label: str, run: dict) -> str:
    """What a step took beside how loaded the machine was (as `uptime` prints it)."""
    step, load = run["step"], run["result"]
    before, after = (" ".join(f"{v:.2f}" for v in la) or "?" for la in step["loadavg"])
    line = (f"{label:22s} {step['started'][11:19]}  wall {step['wall_s']:6.1f} s  "
            f"load average {before} -> {after}")  # fmt: skip
    load = load.get("load") if isinstance(load, dict) else (load[0].get("load") if load else None)
    return line + (f"\n{'':24s}{load_line(load)}" if load else "")


def canonical(spec_dict: dict) -> str:
    """One network, however written (a registry spec and its stage form compare equal)."""
    return repr(spec_from_dict(spec_dict).stages().to_dict())


def stats(pred, meas) -> dict:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    err = pred / meas - 1
    return {
        "n": len(meas),
        "within10": float(np.mean(np.abs(err) <= 0.10)) if len(err) else float("nan"),
        "r": float(np.corrcoef(pred, meas)[0, 1]) if len(meas) > 2 else float("nan"),
        "median": float(np.median(err)) if len(err) else float("nan"),
        "max": float(np.abs(err).max()) if len(err) else float("nan"),
        "slower": int(np.sum(err > 0)),
        "faster": int(np.sum(err < 0)),
    }


def groups(held: list[dict]) -> list[tuple[str, list[int]]]:
    """(label, row indices): same family, other, all, then each family."""
    fams = sorted({h["family"] for h in held})
    same = [i for i, h in enumerate(held) if h["family"] in SAME]
    other = [i for i, h in enumerate(held) if h["family"] not in SAME]
    per = [(f, [i for i, h in enumerate(held) if h["family"] == f]) for f in fams]
    return [("same (RegNet X/Y)", same), ("other", other), ("all", same + other), *per]


def fmt(value, spec: str) -> str:
    """`value` in `spec`, or n/a where it is undefined (r of fewer than 3 models)."""
    width = int(spec.split(".")[0] or 0)
    return f"{'n/a':>{width}s}" if np.isnan(value) else format(value, spec)


def verdict(ok) -> str:
    return "n/a " if ok is None else "PASS" if ok else "FAIL"


def at_most(value, goal):
    return None if value is None or np.isnan(value) else bool(value <= goal)


def at_least(value, goal):
    return None if value is None or np.isnan(value) else bool(value >= goal)


def report_calibration(k: int, data: dict, held_idx: list[int], meas: np.ndarray) -> dict:
    """One calibration's held-out statistics and goals; returns its goal verdicts."""
    pred = np.array([p["seconds_per_step"] for p in data["predictions"][k]["result"]])
    held = [data["held_out"][i] for i in held_idx]
    print(f"\ncalibration {k + 1}: held-out step time ({len(held)} models)")
    print(f"  {'group':20s} {'n':>3s} {'±10%':>6s} {'r':>7s} {'median':>8s} {'max':>7s} "
          f"{'pred slower/faster':>19s}")  # fmt: skip
    by = {}
    for label, idx in groups(held):
        rows = [held_idx[i] + 1 for i in idx]  # +1: prediction 0 is the SPEC
        s = by[label] = stats(pred[rows], meas[rows])
        if not s["n"]:
            print(f"  {label:20s}   0  (none held out)")
            continue
        print(f"  {label:20s} {s['n']:3d} {s['within10']:6.0%} {fmt(s['r'], '7.3f')} "
              f"{s['median']:+8.1%} {s['max']:7.1%} {s['slower']:>10d}/{s['faster']}")  # fmt: skip
    spec_rows = [r for r in data["calibrations"][k]["result"]["rows"]
                 if canonical(r["spec"]) == canonical(data["spec"]["spec"])]  # fmt: skip
    spec_cal = spec_rows[0]["seconds_per_step"] if spec_rows else None
    spec_time = data["time"]["result"][0]["seconds_per_batch"]
    agree = None if spec_cal is None else abs(spec_cal / spec_time - 1)
    cal_text = "not among its rows" if spec_cal is None else (
        f"{spec_cal * 1e3:.1f} ms/step ({spec_cal / spec_time - 1:+.1%} vs time)")  # fmt: skip
    print(f"  SPEC {data['spec']['name']}: time {spec_time * 1e3:.1f} ms/step; calibrate "
          f"{cal_text}; profile predicts {pred[0] * 1e3:.1f} ms "
          f"({pred[0] / spec_time - 1:+.1%})")  # fmt: skip
    same, other, every = by["same (RegNet X/Y)"], by["other"], by["all"]
    return {
        "same family ≥ 90 % within ±10 %": at_least(same["within10"], GOALS["same_within10"]),
        "same family r ≥ 0.99": at_least(same["r"], GOALS["same_r"]),
        "other families ≥ 80 % within ±10 %": at_least(other["within10"], GOALS["other_within10"]),
        "median signed error within ±3 %": at_most(abs(every["median"]), GOALS["median"]),
        "calibrate vs time on the SPEC within 3 %": at_most(agree, GOALS["spec_agreement"]),
    }


def per_model(data: dict, meas: np.ndarray, in_cal: list[bool]) -> None:
    cals = len(data["predictions"])
    print("\nper model: measured ms/step (`time`), error of each calibration's prediction")
    header = " ".join(f"{'cal ' + str(k + 1):>7s}" for k in range(cals))
    print(f"  {'model':30s} {'family':13s} {'ms/step':>8s} {header}")
    rows = [data["spec"], *data["held_out"]]
    for i, m in enumerate(rows):
        errs = " ".join(
            f"{data['predictions'][k]['result'][i]['seconds_per_step'] / meas[i] - 1:+7.1%}"
            for k in range(cals)
        )
        note = "  (SPEC)" if i == 0 else "  (in calibration: not held out)" if in_cal[i] else ""
        print(f"  {m['name']:30s} {m['family']:13s} {meas[i] * 1e3:8.1f} {errs}{note}")


def calibration_agreement(data: dict, held_idx: list[int]) -> bool | None:
    """Largest and median spread of the calibrations' predictions of each held-out model."""
    if len(data["predictions"]) < 2:
        print("\none calibration: no calibration-vs-calibration check (--runs 2)")
        return None
    rows = [i + 1 for i in held_idx]
    preds = np.array([[p["result"][i]["seconds_per_step"] for i in rows]
                      for p in data["predictions"]])  # fmt: skip
    spread = preds.max(axis=0) / preds.min(axis=0) - 1
    worst = int(np.argmax(spread))
    print(f"\n{len(preds)} calibrations' held-out predictions disagree by max {spread.max():.1%} "
          f"({data['held_out'][held_idx[worst]]['name']}), median {np.median(spread):.1%}")  # fmt: skip
    return at_most(float(spread.max()), GOALS["cal_agreement"])


def memory_report(data: dict, held_idx: list[int]) -> None:
    """Held-out peak step memory: each profile's prediction against `time --memory`."""
    timed = data["time"]["result"]
    if any(t.get("memory_bytes") is None for t in timed):
        return  # a --save from before `time --memory`
    meas = np.array([timed[i + 1]["memory_bytes"] for i in held_idx], float)
    print(f"\nheld-out peak step memory ({len(held_idx)} models, `time --memory`):")
    for k, p in enumerate(data["predictions"]):
        pred = [p["result"][i + 1]["memory_bytes"] for i in held_idx]
        if any(v is None for v in pred):
            print(f"  calibration {k + 1}: no memory model")
            continue
        s = stats(pred, meas)
        print(f"  calibration {k + 1}: {s['within10']:.0%} within ±10 %, median "
              f"{s['median']:+.1%}, max {s['max']:.1%}, r {fmt(s['r'], '.3f')}")  # fmt: skip


def report(data: dict) -> None:
    print("steps (wall time, load average before -> after, each command's own load line):")
    steps = [(f"calibrate {k + 1}", c) for k, c in enumerate(data["calibrations"])]
    steps += [("time", data["time"])]
    steps += [(f"profile predict {k + 1}", p) for k, p in enumerate(data["predictions"])]
    for label, run in sorted(steps, key=lambda s: s[1]["step"]["started"]):
        print(step_line(label, run))
        for line in run.get("warnings", []):
            print(f"{'':24s}{line}")
    timed = data["time"]["result"]
    meas = np.array([t["seconds_per_batch"] for t in timed])
    calibrated = {canonical(r["spec"]) for c in data["calibrations"] for r in c["result"]["rows"]}
    models = [data["spec"], *data["held_out"]]
    in_cal = [canonical(m["spec"]) in calibrated for m in models]
    held_idx = [i for i, m in enumerate(data["held_out"]) if not in_cal[i + 1]]
    verdicts = [
        report_calibration(k, data, held_idx, meas) for k in range(len(data["predictions"]))
    ]
    per_model(data, meas, in_cal)
    memory_report(data, held_idx)
    agreement = calibration_agreement(data, held_idx)
    print("\ngoals (docs/planner.md), per calibration:")
    for goal in verdicts[0]:
        print(f"  {' '.join(verdict(v[goal]) for v in verdicts)}  {goal}")
    print(f"  {verdict(agreement)}  calibrations agree within 3 % on every held-out prediction")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--runs", type=int, default=2, help="Calibrations (default 2).")
    parser.add_argument("--quick", action="store_true", help="Tiny smoke run (32 px, 3 models).")
    parser.add_argument("--dir", help="Folder for spec files and profiles [a new temp folder].")
    parser.add_argument("--save", help="Write every raw JSON result to this file.")
    parser.add_argument("--load", help="Re-print from a --save file (no timing).")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.load:
        data = json.loads(Path(args.load).read_text())
    else:
        data = run_all(args)
    report(data)


if __name__ == "__main__":
    main()
