"""Shape-aware conv costs for the operation model, chosen by held-out error (run by hand).

    python benchmarks/bench_opmodel_shapes.py PROFILE.json

Takes the rows of a calibrated `ops` profile (`fastscale calibrate --out PROFILE.json`: every
row has its spec and measured seconds per step) and refits the time model with candidate
shape-aware features beside the shipped ones (`planner.profiles.opmodel.TIME_FIT`), printing
for each: leave-one-out relative error (mean, median, max, share within ±10 %) and, per
family left out of the fit entirely (EfficientNet, RegNetZ, ResNet), the median signed error
and the share within ±10 % of its models predicted by a fit on the other families. No timing:
it refits in seconds, so run it on a calibration taken when the machine was quiet.

Candidates (counted per conv layer, then summed per conv kind like every other feature):
- lane-padded flops: a conv's multiply-adds with its output channels per group padded up to
  16 (one AVX-512 register of float32; 2 of AVX2): narrow group convs waste vector lanes;
- small-map flops: multiply-adds of layers whose output map is at most 4×4 (per-call and
  edge overheads dominate there);
- outputs × k²: the im2col-like traffic of a k×k conv.
The extra counts come from wrapping `spaces.layers.Ops.conv` for this process only: a trial,
not a change to the op walk (docs/planner.md, "Shape-aware costs").
"""

from __future__ import annotations

import json
import sys

import numpy as np

import spaces.layers as layers
from planner.profiles import opmodel
from spaces.op_walk import op_counts
from spaces.specs import spec_from_dict

LANES = 16
SMALL_MAP = 4
_conv = layers.Ops.conv


def _kind(cin, cout, k, groups) -> str:
    if groups == 1:
        return "conv1x1" if k == 1 else "conv"
    return "dwconv" if groups == cin == cout else "gconv"


def _counting_conv(self, cin, cout, k, stride=1, groups=1, bias=False):
    """Ops.conv, also counting the candidate features (scalar walks only)."""
    h = (self.h - 1) // stride + 1
    flops = k * k * cin * cout * h * h // groups
    kind = _kind(cin, cout, k, groups)
    extra = {
        "padded": flops * LANES // max(1, min(LANES, cout // groups)),
        "smallmap": flops if h <= SMALL_MAP else 0,
        "outk": cout * h * h * k * k,
    }
    for name, v in extra.items():
        for key in (f"x.{kind}.{name}", f"x.all.{name}"):
            self.counts[key] = self.counts.get(key, 0) + v
    return _conv(self, cin, cout, k, stride, groups, bias)


def _family(name: str) -> str:
    return "efficientnet" if "EfficientNet" in name else "resnet" if "ResNet" in name else (
        name.split("-")[0].split(" ")[0].lower()
    )  # fmt: skip


def variants() -> dict:
    base = dict(opmodel.TIME_FIT)
    kinds = opmodel.CONV_KINDS

    def per_kind(q):
        return {f"{k}.{q}": (None, (f"x.{k}.{q}",), True) for k in kinds}

    no_conv_flops = {k: v for k, v in base.items() if k not in {f"{c}.flops" for c in kinds}}
    return {
        "shipped (TIME_FIT)": base,
        "+ lane-padded flops per kind": {**base, **per_kind("padded")},
        "lane-padded instead of flops": {**no_conv_flops, **per_kind("padded")},
        "+ lane-padded flops (one cost)": {**base, "padded": (None, ("x.all.padded",), True)},
        "+ small-map flops per kind": {**base, **per_kind("smallmap")},
        "+ small-map flops (one cost)": {**base, "smallmap": (None, ("x.all.smallmap",), True)},
        "+ outputs x k^2 per kind": {**base, **per_kind("outk")},
    }


def evaluate(ops, y, fam, batch, features) -> str:
    x_all = np.stack([opmodel.feature_matrix(o, batch, features) for o in ops])
    names = opmodel.used_features(x_all, list(features))
    x = np.stack([opmodel.feature_matrix(o, batch, features, names) for o in ops])

    def fit(a, b):
        return opmodel.robust_nnls_fit(a, b)[0]

    loo = opmodel.loo_errors(x, y, fit)
    out = [
        f"{len(names):2d} costs  LOO mean {loo.mean():5.1%} median {np.median(loo):5.1%} "
        f"max {loo.max():5.1%} ±10% {np.mean(loo <= 0.1):4.0%}  |"
    ]
    for f in ("efficientnet", "regnetz", "resnet"):
        m = fam == f
        if m.any() and (~m).sum() > len(names):
            e = (x[m] @ fit(x[~m], y[~m]) - y[m]) / y[m]
            out.append(f"{f} {np.median(e):+4.0%} ({np.mean(np.abs(e) <= 0.1):3.0%} ±10%)")
    return " ".join(out)


def main(path: str) -> None:
    profile = json.loads(open(path).read())
    rows, batch = profile["rows"], int(profile["batch"])
    layers.Ops.conv = _counting_conv
    try:
        ops = [op_counts(spec_from_dict(r["spec"])) for r in rows]
    finally:
        layers.Ops.conv = _conv
    y = np.array([r["seconds_per_step"] for r in rows], dtype=np.float64)
    fam = np.array([_family(r["name"]) for r in rows])
    print(f"{path}: {len(rows)} rows, batch {batch}; {profile.get('source', '')}")
    print("held out by family: median signed error (share within ±10 %) of a fit without it")
    for label, features in variants().items():
        print(f"{label:32s} {evaluate(ops, y, fam, batch, features)}")


if __name__ == "__main__":
    main(sys.argv[1])
