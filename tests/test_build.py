"""The PyTorch builder agrees with the analytic counter: parameters for every registered model,
flops and acts measured on real forward passes, random RegNet samples and random stage specs."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from spaces import StageSpec, complexity, get_model, list_models
from spaces.build import Bottleneck, MBConv, build_model, count_parameters, measure_complexity
from spaces.sampler import DesignSpace, sample

torch.set_num_threads(1)


@pytest.mark.parametrize("name", list_models())
def test_registered_model_params_equal_analytic(name):
    spec = get_model(name)
    with torch.device("meta"):  # shapes only: a parameter count needs no memory or init
        model = build_model(spec)
    assert count_parameters(model) == complexity(spec).params


# The golden values (pycls model-complexity file), measured on a real 224/240 px forward pass, independent of the analytic code.
GOLDEN = {
    "RegNetX-200MF": (199_040_872, 2_684_792, 2_164_056),
    "RegNetY-200MF": (199_519_076, 3_162_996, 2_168_052),
    "EfficientNet-B0": (385_825_092, 5_288_548, 6_748_036),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_measured_complexity_equals_golden(name):
    spec = get_model(name)
    assert tuple(measure_complexity(build_model(spec), spec.resolution)) == GOLDEN[name]


@pytest.mark.parametrize(
    "name", ["RegNetX-400MF", "RegNetY-800MF", "RegNetZ-500MF", "RegNetZ-4GF", "EfficientNet-B2"]
)
@pytest.mark.parametrize("resolution", [32, 72])
def test_measured_complexity_equals_analytic(name, resolution):
    spec = get_model(name, resolution=resolution, in_channels=2, num_classes=7)
    assert measure_complexity(build_model(spec), resolution) == complexity(spec)


@pytest.mark.parametrize(
    "name", ["RegNetX-200MF", "RegNetY-200MF", "RegNetZ-500MF", "EfficientNet-B0"]
)
def test_forward_backward_small(name):
    spec = get_model(name, resolution=32, in_channels=1, num_classes=10)
    model = build_model(spec, dropout=0.2, drop_connect=0.2).train()
    x = torch.randn(2, 1, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([3, 7]))
    loss.backward()
    assert torch.isfinite(loss)
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    # the classifier always receives a gradient; a dead network would give zeros here
    assert model.head.fc.weight.grad.abs().sum() > 0
    assert count_parameters(model) == complexity(spec).params  # dropout has no parameters


@pytest.mark.parametrize("space", ["regnetx", "regnety", "regnetz"])
def test_random_samples_match_analytic(space):
    n = {"regnetx": 17, "regnety": 17, "regnetz": 16}[space]  # 50 in all
    drawn = sample(DesignSpace.named(space, resolution=32), 20e6, n=n, seed=3)
    assert len(drawn) == n
    for row in drawn:
        model = build_model(row["spec"], zero_init_last_bn=False)
        measured = measure_complexity(model, 32)
        assert measured == (row["flops"], row["params"], row["acts"]), row["spec"]


def _random_stage_spec(rng: np.random.Generator) -> StageSpec:
    block = str(rng.choice(["X", "Y", "Z", "MB"]))
    n = int(rng.integers(1, 5))
    widths = [int(rng.integers(1, 9)) * 8 for _ in range(n)]
    strides = [int(rng.choice([1, 2])) for _ in range(n)]
    depths = [int(rng.integers(1, 4)) for _ in range(n)]
    if block == "MB":
        bottlenecks = [float(rng.choice([1, 2.5, 3, 4, 6])) for _ in range(n)]
        groups = [1] * n
        kernels = [int(rng.choice([3, 5, 7])) for _ in range(n)]
    else:
        bottlenecks = [float(rng.choice([0.25, 0.5, 1, 2, 4])) for _ in range(n)]
        groups = []
        for w, b in zip(widths, bottlenecks, strict=True):
            inner = int(round(w * b))
            groups.append(int(rng.choice([g for g in (1, 2, 4, 8, 16) if inner % g == 0])))
        kernels = [3] * n
    return StageSpec(
        block=block,
        depths=tuple(depths),
        widths=tuple(widths),
        group_widths=tuple(groups),
        bottlenecks=tuple(bottlenecks),
        strides=tuple(strides),
        kernels=tuple(kernels),
        resolution=int(rng.integers(8, 41)),
        stem_width=int(rng.integers(1, 5)) * 8,
        head_width=int(rng.choice([0, 0, 48, 100])),
        se_ratio=float(rng.choice([0.0, 0.25, 0.3])),
        in_channels=int(rng.integers(1, 5)),
        num_classes=int(rng.integers(2, 30)),
    )


def test_random_stage_specs_match_analytic():
    rng = np.random.default_rng(7)
    blocks = set()
    for _ in range(60):
        spec = _random_stage_spec(rng)
        blocks.add(spec.block)
        model = build_model(spec)
        assert measure_complexity(model, spec.resolution) == complexity(spec), spec
        out = model(torch.randn(2, spec.in_channels, spec.resolution, spec.resolution))
        assert out.shape == (2, spec.num_classes)
    assert blocks == {"X", "Y", "Z", "MB"}


def test_residual_structure():
    z = build_model(get_model("RegNetZ-500MF"))
    for stage in z.stage_modules():
        blocks = list(stage)
        assert not blocks[0].has_skip and blocks[0].proj is None and blocks[0].act is None
        assert all(b.has_skip and b.proj is None for b in blocks[1:])
        # zero-init touches only blocks with a skip, or the stage would output zeros
        assert torch.all(blocks[0].last_bn.weight == 1)
        assert all(torch.all(b.last_bn.weight == 0) for b in blocks[1:])

    spec = get_model("RegNetX-200MF")
    s = spec.stages()
    x = build_model(spec)
    w_in = s.stem_width
    for stage, w in zip(x.stage_modules(), s.widths, strict=True):
        first = stage[0]
        assert first.proj is not None and first.proj.conv.stride == (2, 2)
        assert first.proj.conv.in_channels == w_in and first.proj.conv.out_channels == w
        assert all(b.proj is None and b.has_skip for b in list(stage)[1:])
        w_in = w


def test_se_width_from_block_input():
    spec = get_model("RegNetY-200MF")
    s = spec.stages()
    model = build_model(spec)
    w_in = s.stem_width
    for stage, w, g in zip(model.stage_modules(), s.widths, s.group_widths, strict=True):
        for block in stage:
            assert isinstance(block, Bottleneck)
            assert block.se.reduce.out_channels == round(0.25 * w_in)
            assert block.conv2.conv.groups == w // g
            w_in = w
    effnet = build_model(get_model("EfficientNet-B0"))
    mb = effnet.s2[0]  # 16 -> 24, expansion 6
    assert isinstance(mb, MBConv) and mb.expand.conv.out_channels == 96
    assert mb.se.reduce.out_channels == 4 and mb.dwconv.conv.groups == 96
    assert effnet.s1[0].expand is None  # expansion 1: no expand conv


def test_printable_names():
    text = repr(build_model(get_model("RegNetY-200MF")))
    for name in ("(stem)", "(s1)", "(s4)", "(b1)", "(se)", "(head)", "(fc)"):
        assert name in text


@pytest.mark.parametrize(
    "module", ["spaces", "spaces.pycls_writer", "spaces.io", "planner", "trials.data.catalogue"]
)
def test_import_does_not_load_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_openmp_wait_default_follows_the_load_and_keeps_the_users_choice():
    """trials sets how idle OpenMP threads wait before torch loads (docs/training.md)."""
    import os
    import subprocess
    import sys

    from trials import omp_wait_default

    assert omp_wait_default({}, 0.4, 2) == {"GOMP_SPINCOUNT": "10000"}  # quiet: short spin
    assert omp_wait_default({}, 1.0, 2) == {"OMP_WAIT_POLICY": "PASSIVE"}  # busy: sleep
    assert omp_wait_default({}, None, 2) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert omp_wait_default({"OMP_WAIT_POLICY": "ACTIVE"}, 0.0, 2) == {}
    assert omp_wait_default({"GOMP_SPINCOUNT": "5"}, 9.0, 2) == {}
    # in a fresh interpreter, before torch: exactly one of the two is set, a user's value kept
    code = "import os, trials; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() in (["PASSIVE", "None"], ["None", "10000"])
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["ACTIVE", "None"]
