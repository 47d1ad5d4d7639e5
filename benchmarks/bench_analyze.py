"""Design-space analysis benchmark (run by hand): `python benchmarks/bench_analyze.py [N]`.

N results (default 100,000) in two populations, RegNet parameters and a made-up error with
a trend, spread over a decade of flops so the complexity normalisation does real work;
times `trials.analysis.run.analyze_frame` (normalisation, EDF and quantile bands, best of
m, KS with permutations, trends, refined space) at the CLI's defaults (1000 bootstrap
resamples, 1000 permutations) and at 200/200, without the HTML (figures subsample to a
few thousand points, so their cost does not grow with N). Prints wall and CPU time (the
latter tells more on a shared, loaded machine). Goal: seconds, not minutes.
"""

import sys
import time

import numpy as np
import pandas as pd

from spaces.sampler import DesignSpace
from trials.analysis.run import AnalyzeConfig, analyze_frame


def population(name: str, n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = DesignSpace.named(name).draw(rng, n)
    df = pd.DataFrame(cols)
    df["flops"] = np.exp(rng.uniform(np.log(2e8), np.log(2e9), n))
    df["error"] = (
        0.3 - 0.02 * np.log10(df["flops"] / 2e8) + 0.002 * np.abs(df["depth"] - 16)
        + shift + rng.normal(0, 0.01, n)
    )  # fmt: skip
    df["space"], df["regime"], df["block"] = name, "", name[-1].upper()
    df["source"], df["dataset"], df["resolution"] = "bench", "imagenet", 224
    return df


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    df = pd.concat(
        [population("regnetx", n // 2, 0, 0.01), population("regnety", n - n // 2, 1, 0.0)],
        ignore_index=True,
    )
    for b in (200, 1000):
        cfg = AnalyzeConfig(bootstrap=b, permutations=b)
        t, cpu = time.perf_counter(), time.process_time()
        result = analyze_frame(df, cfg)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        ks = result["populations"][1]["ks_vs_first"]
        print(
            f"{n:,} results, {b} resamples/permutations: {wall:.1f} s wall, {cpu:.1f} s CPU "
            f"(KS D={ks['d']:.3f} p={ks['p']:.3g}; refined keeps "
            f"{result['refined']['good_kept']:.0%} good, {result['refined']['others_kept']:.0%} others)"
        )


if __name__ == "__main__":
    main()
