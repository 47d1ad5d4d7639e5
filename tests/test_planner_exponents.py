"""Exponents (the paper's §3-5, docs/planner.md): scaling with α grows params as s^((1+α)/2) and acts as
s^((2-α)/2). Measured as log-log slopes against the REALISED flops factor, s from 2 to 32."""

import numpy as np
import pytest

from planner.batch import batch_complexity, scale_arrays
from planner.strategies import alpha_strategy
from spaces.complexity import complexity
from spaces.registry import get_model, list_models

FACTORS = np.geomspace(2, 32, 9)
ALPHAS = (0.0, 1 / 3, 0.8, 1.0)


def _stem_acts_share(spec) -> float:
    s = spec.stages()
    h = (s.resolution - 1) // 2 + 1
    return s.stem_width * h * h / complexity(s).acts


# The theory covers a stage; the stem is not scaled in width or depth, so its activations
# grow only with resolution. In the three smallest RegNetX/Y sizes (200MF-600MF) the stem
# holds 9-19 % of all activations and pulls the acts slope down by up to 0.12; every other
# registered model (stem < 8 % of acts) is held to the 0.08 of the issue.
MODELS = [n for n in list_models() if _stem_acts_share(get_model(n)) < 0.08]


def _slopes(name, alpha):
    base = get_model(name).stages()
    cx = complexity(base)
    c = scale_arrays(base, *alpha_strategy(alpha).factors(FACTORS))
    flops, params, acts = batch_complexity(base, c)
    x = np.log(flops / cx.flops)
    assert np.all(np.diff(x) > 0)  # the realised factor grows with s
    return np.polyfit(x, np.log(params / cx.params), 1)[0], np.polyfit(
        x, np.log(acts / cx.acts), 1
    )[0]


def test_model_selection_is_broad():
    assert len(MODELS) >= 25
    assert {"RegNetY-4.0GF", "RegNetX-800MF", "RegNetZ-500MF", "EfficientNet-B0"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_params_and_acts_exponents(name):
    for alpha in ALPHAS:
        p, a = _slopes(name, alpha)
        assert p == pytest.approx((1 + alpha) / 2, abs=0.08), (name, alpha, "params")
        assert a == pytest.approx((2 - alpha) / 2, abs=0.08), (name, alpha, "acts")


def test_fast_scaling_has_fewer_acts_than_uniform_scaling():
    """The point of dWr: at the same flops, activations grow far slower than with dwr."""
    _, fast = _slopes("RegNetY-4.0GF", 0.8)
    _, uniform = _slopes("RegNetY-4.0GF", 1 / 3)
    assert fast < uniform - 0.15
