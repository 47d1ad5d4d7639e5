"""How well a small calibration predicts its own timings (run by hand; wall clock).

    python benchmarks/bench_calibrate.py [--rounds 2]

Calibrates RegNetY-200MF at 32 px itself and scaled by w and dWr × 2, 4 (the set of
tests/test_timing_calibrate.py, batch 4, one thread) and prints, per model, the fitted
profile's prediction over the measured time. On a quiet machine the ratios sit near 1; the
test suite asserts no such window (a timing disturbed by other work would fail it), so this
is where a broken fit shows up as ratios far from 1.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from planner.profiles import load_profile
from spaces.registry import get_model
from trials.timing.calibrate import calibrate
from trials.timing.protocol import TimingProtocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cpu.json")
        result = calibrate(
            get_model("RegNetY-200MF").with_resolution(32),
            strategies=["w", "dWr"],
            factors=[2, 4],
            batch_size=4,
            threads=1,
            protocol=TimingProtocol(steps=2, rounds=args.rounds, min_warmup=1, max_warmup=1),
            diverse=False,
            out=out,
        )
        profile = load_profile(out)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':28} {'measured s/img':>15} {'predicted':>10} {'ratio':>6}")
    for row in result.rows:
        pred = profile.predict(row["acts"], row["flops"])
        print(f"{row['name'][:28]:28} {row['time']:15.5f} {pred:10.5f} {pred / row['time']:6.2f}")


if __name__ == "__main__":
    main()
