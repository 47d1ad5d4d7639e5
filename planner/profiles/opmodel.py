"""The operation-cost model of an `ops` profile: step time and peak training memory as sums
of per-operation costs (docs/planner.md, "The operation model").

A network's operations (`spaces.ops`) are reduced to a short feature vector per training
step at batch B: per operation kind its multiply-adds and the elements it moves (× B), and
per step the number of operation calls (a fixed launch/dispatch overhead each), the
parameter count (optimizer step, gradient zeroing) and a constant. Time is a non-negative
linear function of these features; so is peak memory (saved activations per image × B,
bytes per parameter for weights, gradients and momentum, and a constant). Non-negative
costs keep every operation's price physical (no operation makes a network faster), which is
what lets a model fitted on a few dozen networks extrapolate to networks it never saw.

Everything here is numpy on arrays of counts, so pricing 10k candidate networks is one
matrix product.

Traced networks (`spaces.trace`, docs/models.md "Any PyTorch model") bring kinds fastscale's
own blocks lack. The clamp-like activations ReLU6 (hardtanh), hardswish and hardsigmoid are
one cheap pass over their elements like ReLU, and join the shared "elems" cost: a profile
fitted with it prices them without having run them. GELU, tanh and softmax
(transcendentals), LayerNorm (two reductions per row), upsampling (its output is what it
writes) and matmul (a product of two activations, batched) each have their own cost, which
only a calibration that ran them can fit (`fastscale calibrate --add MODEL`): a network with
an operation whose feature has no cost in the profile is refused (`check_kinds`).
"""

from __future__ import annotations

import numpy as np

from planner.profiles._base import ProfileError
from spaces.layers import TRACED_KINDS
from spaces.op_walk import op_counts
from spaces.ops import CONV_KINDS, KINDS, Ops

# time features: name -> (op kind it needs, count keys summed, per image?)
_CONV_TIME = {
    f"{kind}.{q}": (kind, keys, True)
    for kind in CONV_KINDS
    for q, keys in (("flops", (f"{kind}.flops",)), ("moved", (f"{kind}.inputs", f"{kind}.outputs")))
}
TIME_FEATURES = {
    **_CONV_TIME,
    # A grouped conv runs one small GEMM per group and output position; with few channels per
    # group each is mostly overhead: on one CPU core a 3×3 conv of group width 2 takes 2-4×
    # the time per output element of group width 8-16, at a quarter of the multiply-adds
    # (docs/planner.md, "Shape-aware costs"). Priced per group × output position ("slots").
    "gconv.slots": ("gconv", ("gconv.slots",), True),
    "fc.flops": (None, ("se.flops", "linear.flops"), True),  # SE convs and the classifier: GEMMs
    "bn.elems": ("bn", ("bn.inputs",), True),
    "relu.elems": ("relu", ("relu.inputs",), True),
    "silu.elems": ("silu", ("silu.inputs",), True),
    "add.elems": ("add", ("add.outputs",), True),
    "mul.elems": ("mul", ("mul.outputs",), True),
    "avgpool.elems": ("avgpool", ("avgpool.inputs",), True),
    "maxpool.elems": ("maxpool", ("maxpool.inputs",), True),
    # traced kinds with costs of their own (module doc)
    "matmul.flops": ("matmul", ("matmul.flops",), True),
    "layernorm.elems": ("layernorm", ("layernorm.inputs",), True),
    "gelu.elems": ("gelu", ("gelu.inputs",), True),
    "tanh.elems": ("tanh", ("tanh.inputs",), True),
    "softmax.elems": ("softmax", ("softmax.inputs",), True),
    "upsample.elems": ("upsample", ("upsample.outputs",), True),
    "calls": (None, tuple(f"{k}.calls" for k in KINDS), False),
    "params": (None, ("params",), False),
    "step": (None, (), False),
}
# The time features a new fit uses. BN, ReLU, residual adds, SE gating and pooling are one
# memory-bound pass over their elements each, at about the same cost per element, and are
# fitted as one cost ("elems", the sum of their features): nearly every conv is followed by a
# BN and most by an activation, so across a few dozen calibration networks their separate
# costs are not identifiable, and fitting them apart made the fit swing with one or two rows
# (docs/planner.md, benchmark). SiLU (a transcendental) keeps its own. Profiles fitted with
# the separate costs still load and price. The clamp-like activations of traced networks
# (CLAMP_KINDS) are such a pass too and join "elems" (module doc).
SPLIT_ELEMENTWISE = ("bn.elems", "relu.elems", "add.elems", "mul.elems", "avgpool.elems",
                     "maxpool.elems")  # fmt: skip
CLAMP_KINDS = ("relu6", "hardswish", "hardsigmoid")
TIME_FEATURES["elems"] = (
    None,
    (
        *(key for name in SPLIT_ELEMENTWISE for key in TIME_FEATURES[name][1]),
        *(f"{kind}.inputs" for kind in CLAMP_KINDS),
    ),
    True,
)
TIME_FIT = {k: v for k, v in TIME_FEATURES.items() if k not in SPLIT_ELEMENTWISE}
# memory features: elements each kind leaves saved for the backward pass, per image.
# New fits use one, "saved.elems": the elements autograd keeps, counted by what each
# operation saves — every conv's, linear layer's and matmul's inputs, BN's and LayerNorm's
# inputs, the inputs of SiLU, GELU, ReLU6, hardswish and hardsigmoid, both operands of a
# product (SE gating, layer scale), a max-pool's input and its int64 indices (two 4-byte
# units). ReLU, sigmoid, tanh and softmax save their output, which the next operation saves
# as its input already; adds, pools and upsampling save nothing. The per-kind features below
# cannot tell these apart on RegNets (every conv has a BN, nearly every BN an activation), so
# a fit on the diverse set priced all of it on BN elements and under-predicted networks whose
# BN outputs feed a conv directly (MobileNetV2's linear bottleneck, ReLU6: 30-49 %, docs/
# planner.md "Memory of traced networks"); they stay for older profiles.
SAVED_KEYS = (
    *(f"{k}.inputs" for k in (*CONV_KINDS, "se", "linear", "matmul", "bn", "layernorm")),
    *(f"{k}.inputs" for k in ("silu", "gelu", *CLAMP_KINDS, "mul", "maxpool")),
    "maxpool.outputs",
    "maxpool.outputs",  # the indices: int64, twice a float's bytes
)
MEMORY_FEATURES = {
    "conv.outputs": (None, tuple(f"{k}.outputs" for k in (*CONV_KINDS, "se")), True),
    "bn.elems": ("bn", ("bn.inputs",), True),
    "relu.elems": ("relu", ("relu.inputs",), True),
    "silu.elems": ("silu", ("silu.inputs",), True),
    "add.elems": ("add", ("add.outputs",), True),
    "mul.elems": ("mul", ("mul.outputs",), True),
    "maxpool.elems": ("maxpool", ("maxpool.outputs",), True),
    "saved.elems": (None, SAVED_KEYS, True),
    "params": (None, ("params",), False),
    "step": (None, (), False),
}
MEMORY_FIT = {k: MEMORY_FEATURES[k] for k in ("saved.elems", "params", "step")}
# Every saved element holds at least one value of the training precision. The diverse set
# alone does not separate bytes per saved element from bytes per parameter (larger networks
# have more of both; a RegNet's late, parameter-heavy layers allocate their gradients while
# nearly every activation is still saved): a free fit put 3.4 bytes on an fp32 element and
# under-predicted MobileNet-like networks by about 20 % (docs/planner.md).
BYTES_PER_ELEMENT = {"fp32": 4.0, "amp": 2.0}


def kinds_used(ops: Ops) -> np.ndarray:
    """Boolean (N, len(KINDS)) (or (len(KINDS),)): which operation kinds a network calls."""
    cols = [np.asarray(ops.counts.get(f"{k}.calls", 0)) > 0 for k in KINDS]
    return np.stack(np.broadcast_arrays(*cols), axis=-1)


def feature_matrix(ops: Ops, batch: int, features: dict, names=None) -> np.ndarray:
    """(N, F) float64 features of N networks (or (F,) for one) per step at `batch`."""
    names = list(features) if names is None else names
    cols = []
    for name in names:
        _kind, keys, per_image = features[name]
        v = (
            np.asarray(1.0)
            if not keys
            else sum(
                (np.asarray(ops.counts.get(k, 0), dtype=np.float64) for k in keys),
                np.asarray(0.0),
            )
        )
        cols.append(v * batch if per_image else v)
    return np.stack(np.broadcast_arrays(*cols), axis=-1)


def nnls_fit(x: np.ndarray, y: np.ndarray, floor: np.ndarray | None = None) -> np.ndarray:
    """Non-negative coefficients minimising the relative error Σ ((x·c - y) / y)²: each row is
    weighted by 1/y so a small network counts as much as a large one. Columns are scaled to
    unit size first (features span ten orders of magnitude). `floor` (one value per column)
    makes each coefficient at least that: c = floor + d, d >= 0."""
    from scipy.optimize import nnls

    floor = np.zeros(x.shape[1]) if floor is None else np.asarray(floor, dtype=np.float64)
    a = x / y[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale, 1.0 - (x @ floor) / y, maxiter=50 * a.shape[1])
    return coef / scale + floor


SLOW_READING_MADS = 3.0  # a reading this many robust deviations slower than the fit: disturbed
MAX_DROPPED = 0.2  # never set aside more than this share of the rows


def robust_nnls_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`nnls_fit` that sets aside timings disturbed by other work, and the rows it kept.

    Other processes, and a shared host's neighbours, only ever add time: a network measured
    much slower than the fit of all the others predicts is a disturbed reading, not a costly
    operation. Twice: fit, then drop the rows whose measured time exceeds the prediction by
    more than SLOW_READING_MADS robust deviations (median absolute deviation of the relative
    residuals, at least 2 %), at most MAX_DROPPED of them, the slowest first. Fast readings
    are never dropped (nothing makes a step faster than its operations allow).
    """
    keep = np.ones(len(y), dtype=bool)
    coef = nnls_fit(x, y)
    for _ in range(2):
        resid = (x @ coef - y) / y  # negative: measured slower than predicted
        mad = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        slow = resid < np.median(resid) - SLOW_READING_MADS * max(mad, 0.02)
        order = np.argsort(resid)[: int(MAX_DROPPED * len(y))]
        new_keep = np.ones(len(y), dtype=bool)
        new_keep[order[slow[order]]] = False
        if (new_keep == keep).all() or new_keep.sum() < x.shape[1]:
            break
        keep = new_keep
        coef = nnls_fit(x[keep], y[keep])
    return coef, keep


def loo_errors(x: np.ndarray, y: np.ndarray, fit=nnls_fit) -> np.ndarray:
    """Relative error of each row predicted by a model fitted (`fit`) on all the others."""
    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = abs(x[i] @ fit(x[keep], y[keep]) - y[i]) / y[i]
    return out


def used_features(x: np.ndarray, names) -> list[str]:
    """The features some calibration row has (an all-zero column cannot be fitted)."""
    return [n for n, col in zip(names, x.T, strict=True) if np.any(col != 0)]


# --- fitting and pricing (profiles of kind "ops") -------------------------------------------


def _ops_of(what) -> Ops:
    return what if isinstance(what, Ops) else op_counts(what)


def _seconds_per_image_factor(profile) -> float | None:
    """Seconds per image per unit of the profile's time, when the unit says."""
    if profile.unit == "s/img":
        return 1.0
    if profile.unit == "min/epoch" and profile.epoch_images:
        return 60.0 / profile.epoch_images
    return None


def priced_kinds(profile) -> set[str]:
    """The operation kinds `profile` prices: those its calibration ran, and the clamp-like
    activations when it has the shared one-pass cost they join ("elems", module doc)."""
    kinds = set(profile.kinds)
    if "elems" in profile.costs:
        kinds |= set(CLAMP_KINDS)
    return kinds


def check_kinds(profile, used: np.ndarray, what: str = "this network") -> None:
    """An operation kind the profile has no cost for cannot be priced: say which, and how."""
    used = np.asarray(used).reshape(-1, len(KINDS)).any(axis=0)
    priced = priced_kinds(profile)
    missing = [k for k, u in zip(KINDS, used, strict=True) if u and k not in priced]
    if missing:
        traced = [k for k in missing if k in (*TRACED_KINDS, "matmul")]
        how = (
            f"calibrate with a model that has {'them' if len(traced) > 1 else 'it'}: "
            "`fastscale calibrate --add MODEL --input-shape C,H,W --out PROFILE` (MODEL a "
            "traced network with "
            f"{', '.join(traced)}, e.g. a package.module:function; docs/planner.md)"
            if traced
            else "recalibrate with a model that has them, e.g. `fastscale calibrate SPEC --out "
            "PROFILE` with SPEC such a model"
        )
        raise ProfileError(
            f"profile {profile.name!r} cannot price {what}: its calibration ran no "
            f"{', '.join(missing)} operations; {how}"
        )


def price(profile, what, batch: int | None = None) -> dict:
    """Predicted seconds per step / per image, runtime in the profile's unit and peak memory
    bytes per step (None without a memory model) of a spec or of `spaces.ops` counts."""
    ops = _ops_of(what)
    batch = int(batch or profile.batch or 0) or None
    factor = _seconds_per_image_factor(profile)
    if profile.kind == "linear":
        runtime = np.asarray(profile.predict(ops.acts, ops.flops), dtype=np.float64)
        per_image = None if factor is None else runtime * factor
        per_step = None if per_image is None or batch is None else per_image * batch
        memory = None
    else:
        if batch is None:
            raise ProfileError(f"profile {profile.name!r} has no batch size; give one")
        check_kinds(profile, kinds_used(ops))
        names = list(profile.costs)
        per_step = feature_matrix(ops, batch, TIME_FEATURES, names) @ np.array(
            [profile.costs[n] for n in names]
        )
        per_image = per_step / batch
        runtime = per_image / factor if factor else per_image
        memory = None
        if profile.memory:
            names = list(profile.memory)
            coef = np.array([profile.memory[n] for n in names])
            memory = feature_matrix(ops, batch, MEMORY_FEATURES, names) @ coef
    return {
        "batch": batch,
        "seconds_per_step": per_step,
        "seconds_per_image": per_image,
        "runtime": runtime,
        "memory_bytes": memory,
    }


def _stats(pred: np.ndarray, y: np.ndarray, loo: np.ndarray) -> dict:
    rel = np.abs(pred - y) / y
    return {
        "n": int(len(y)),
        "mean_rel_error": float(rel.mean()),
        "max_rel_error": float(rel.max()),
        "loo_mean_rel_error": float(loo.mean()),
        "loo_max_rel_error": float(loo.max()),
        "loo_within_10pct": float(np.mean(loo <= 0.10)),
        "loo_rel_errors": [float(e) for e in loo],
    }


def fit_model(
    ops_list: list[Ops], y, batch: int, features: dict, robust: bool = False, floors=None
) -> tuple[dict, dict]:
    """Non-negative costs of the features the rows have, and fit statistics. `robust` sets
    disturbed (too slow) timings aside (`robust_nnls_fit`); their indices go in the stats.
    `floors` (feature -> least cost; not with `robust`) keeps physical lower bounds."""
    x_all = np.stack([feature_matrix(o, batch, features) for o in ops_list])
    names = used_features(x_all, list(features))
    x = np.stack([feature_matrix(o, batch, features, names) for o in ops_list])
    y = np.asarray(y, dtype=np.float64)
    if robust:
        coef, kept = robust_nnls_fit(x, y)
        loo = loo_errors(x, y, lambda x_rest, y_rest: robust_nnls_fit(x_rest, y_rest)[0])
    else:
        floor = np.array([(floors or {}).get(n, 0.0) for n in names])
        coef, kept = nnls_fit(x, y, floor), np.ones(len(y), dtype=bool)
        loo = loo_errors(x, y, lambda x_rest, y_rest: nnls_fit(x_rest, y_rest, floor))
    stats = _stats(x @ coef, y, loo)
    stats["set_aside"] = [int(i) for i in np.flatnonzero(~kept)]
    return dict(zip(names, (float(c) for c in coef), strict=True)), stats


def check_ops_fields(data: dict, where: str) -> None:
    """The fields an `ops` profile file must hold, with values the model can use."""
    if data.get("batch") is None:
        raise ProfileError(f"{where}: an ops profile needs batch >= 1, got None")
    if not set(data.get("kinds", ())) <= set(KINDS):  # types: RuntimeProfile's schema
        raise ProfileError(f"{where}: kinds must be a list of {', '.join(KINDS)}")
    if not data.get("costs"):
        raise ProfileError(f"{where}: an ops profile needs costs (an object of feature costs)")
    for key, allowed in (("costs", TIME_FEATURES), ("memory", MEMORY_FEATURES)):  # old ones too
        for name in data.get(key, {}):
            if name not in allowed:
                raise ProfileError(
                    f"{where}: unknown {key} feature {name!r}; allowed: {', '.join(allowed)}"
                )
