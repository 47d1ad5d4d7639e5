"""The ResNet family to the digit: the published ResNet/ResNeXt complexity (pycls's counting
conventions, 224 px) and the parameter counts of torchvision/timm's ResNet, ResNet-D,
SE-ResNet and ResNet-RS; bad stage lists are one-line errors."""

import pytest

from spaces import complexity, get_model, list_models, spec_from_dict
from spaces.resnet import ResNetSpec
from spaces.specs import SpecError

# (flops, params, acts) at 224 px, 1000 classes: the published ResNet/ResNeXt values.
RESNET_GOLDEN = {
    "ResNet-50": (4_089_185_256, 25_557_032, 11_315_688),
    "ResNet-101": (7_801_406_440, 44_549_160, 16_433_640),
    "ResNet-152": (11_513_627_624, 60_192_808, 22_755_816),
    "ResNeXt-50-32x4d": (4_230_480_872, 25_028_904, 14_602_216),
    "ResNeXt-101-32x4d": (7_969_997_800, 44_177_704, 21_426_152),
    "ResNeXt-152-32x4d": (11_709_514_728, 59_951_400, 29_855_720),
}
# Parameter counts of the public implementations (torchvision resnet18/34/50/101/152 and
# resnext50_32x4d/101_32x4d; timm resnet200, resnet50d, seresnet50, resnetrs*).
RESNET_PARAMS = {
    "ResNet-18": 11_689_512,
    "ResNet-34": 21_797_672,
    "ResNet-50": 25_557_032,
    "ResNet-101": 44_549_160,
    "ResNet-152": 60_192_808,
    "ResNet-200": 64_673_832,
    "ResNeXt-50-32x4d": 25_028_904,
    "ResNeXt-101-32x4d": 44_177_704,
    "ResNeXt-152-32x4d": 59_951_400,
    "ResNet-50-D": 25_576_264,
    "SE-ResNet-50": 28_088_024,
    "ResNet-RS-50": 35_691_912,
    "ResNet-RS-101": 63_618_696,
    "ResNet-RS-152": 86_621_576,
    "ResNet-RS-200": 93_209_992,
    "ResNet-RS-270": 129_861_448,
    "ResNet-RS-350": 163_956_168,
    "ResNet-RS-420": 191_891_656,
}
RS_RESOLUTION = {50: 160, 101: 192, 152: 256, 200: 256, 270: 256, 350: 288, 420: 320}


@pytest.mark.parametrize("name", RESNET_GOLDEN)
def test_resnet_golden_complexity(name):
    assert tuple(complexity(get_model(name))) == RESNET_GOLDEN[name]


@pytest.mark.parametrize("name", RESNET_PARAMS)
def test_resnet_family_parameter_counts(name):
    assert complexity(get_model(name)).params == RESNET_PARAMS[name]


def test_resnet_family_is_registered_at_training_resolutions():
    assert set(list_models("*ResNe*")) == set(RESNET_PARAMS)
    for depth, res in RS_RESOLUTION.items():
        assert get_model(f"ResNet-RS-{depth}").resolution == res
    s = get_model("ResNeXt-50-32x4d").stages()
    assert s.group_widths == (4, 8, 16, 32) and s.strides == (1, 2, 2, 2)
    assert [int(w * b) for w, b in zip(s.widths, s.bottlenecks, strict=True)] == [
        128,
        256,
        512,
        1024,
    ]


def test_resnet_spec_round_trips_through_a_spec_file_mapping():
    spec = get_model("ResNet-RS-101")
    again = spec_from_dict(spec.to_dict())
    assert again == spec and complexity(again) == complexity(spec)


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"depths": [3, 0, 6, 3]}, "depths must be >= 1"),
        ({"depths": [3, 4, 6, 3], "groups": 3}, "not divisible by groups=3"),
        ({"depths": [3, 4], "widths": [256, 512, 1024]}, "give one per stage"),
        ({"depths": [3, 4, 6, 3], "block": "Q"}, "ResNet block must be one of R, RB"),
        ({"depths": [3, 4, 6, 3], "stem": "huge"}, "stem must be one of"),
        ({"depths": [3, 4, 6, 3], "shortcut": "skip"}, "shortcut of R blocks must be one of"),
        ({"depths": [2, 2], "block": "RB", "groups": 2}, "groups must be 1"),
        ({"depths": "abc"}, "depths must be a list, got .abc."),
    ],
)
def test_impossible_resnet_is_a_one_line_spec_error(fields, says):
    with pytest.raises(SpecError, match=says) as err:
        spec_from_dict({"family": "resnet", **fields})
    assert "\n" not in str(err.value)


def test_scalar_and_vectorized_counts_agree_on_resnets():
    import numpy as np

    from spaces.complexity import stages_complexity_batch

    for name in list_models("*ResNe*"):
        s = get_model(name, resolution=96).stages()
        one = lambda v: np.asarray([v])  # noqa: E731
        counts = stages_complexity_batch(
            s, one(s.depths), one(s.widths), one(s.group_widths), [s.resolution]
        )
        assert tuple(int(c[0]) for c in counts) == tuple(complexity(s)), name


def test_default_widths_follow_the_block():
    assert ResNetSpec((2, 2, 2, 2), block="RB").widths == (64, 128, 256, 512)
    assert ResNetSpec((1, 1)).widths == (256, 512)


def _uninitialised(spec):
    """The real module structure with zero CPU weights: the hooks count shapes, and skipping
    the random initialisation keeps the 190M-parameter ResNet-RS-420 cheap to build."""
    import torch

    from spaces.build import Network

    with torch.device("meta"):
        model = Network(spec).to_empty(device="cpu")
    with torch.no_grad():  # zeros, not whatever memory held: no NaN/denormal slow paths
        for t in [*model.parameters(), *model.buffers()]:
            t.zero_()
    return model


@pytest.mark.parametrize("name", list(RESNET_PARAMS))
def test_forward_hooks_agree_with_analytic_counts(name):
    """Every ResNet at 64 px (the counting is the same at every resolution: each layer's
    output size is (h - 1) // stride + 1 at any h), and params of the full-size network."""
    import torch

    from spaces.build import measure_complexity

    torch.set_num_threads(1)
    spec = get_model(name, resolution=64)
    assert measure_complexity(_uninitialised(spec), 64) == complexity(spec)


@pytest.mark.parametrize("name", ["ResNet-50", "ResNeXt-50-32x4d", "ResNet-RS-50"])
def test_forward_hooks_reproduce_golden_at_training_resolution(name):
    import torch

    from spaces.build import measure_complexity

    torch.set_num_threads(1)
    spec = get_model(name)
    measured = measure_complexity(_uninitialised(spec), spec.resolution)
    assert measured == complexity(spec)
    assert measured.params == RESNET_PARAMS[name]
    if name in RESNET_GOLDEN:
        assert tuple(measured) == RESNET_GOLDEN[name]


def test_resnet_trains_a_step_and_zero_inits_last_bn():
    import torch

    from spaces.build import build_model, count_parameters

    spec = get_model("ResNet-RS-50", resolution=32, in_channels=1, num_classes=10)
    model = build_model(spec).train()
    assert all(float(b.last_bn.weight.detach().abs().sum()) == 0 for b in model.blocks())
    out = model(torch.randn(2, 1, 32, 32))
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([1, 2]))
    loss.backward()
    assert out.shape == (2, 10) and torch.isfinite(loss)
    assert model.head.fc.weight.grad.abs().sum() > 0
    assert count_parameters(model) == complexity(spec).params


@pytest.mark.parametrize("name", ["ResNet-50", "ResNet-152", "ResNeXt-101-32x4d"])
def test_pycls_resnet_export_round_trips(name):
    import yaml

    from spaces.pycls_reader import spec_from_pycls
    from spaces.pycls_writer import pycls_yaml, to_pycls_config

    spec = get_model(name)
    cfg = to_pycls_config(spec)
    assert cfg["MODEL"]["TYPE"] == "resnet" and cfg["RESNET"]["STRIDE_1X1"] is False
    assert spec_from_pycls(yaml.safe_load(pycls_yaml(spec))) == spec


@pytest.mark.parametrize("name", ["ResNet-18", "ResNet-200"])
def test_other_resnets_export_as_pycls_anynet(name):
    from planner.scale import scale_spec
    from spaces.pycls_reader import spec_from_pycls
    from spaces.pycls_writer import to_pycls_config

    for spec in (get_model(name), scale_spec(get_model(name), "dWr", 2.0)):
        cfg = to_pycls_config(spec)
        assert cfg["MODEL"]["TYPE"] == "anynet" and cfg["ANYNET"]["STEM_TYPE"] == "res_stem_in"
        back = spec_from_pycls(cfg)
        assert back == spec.stages() and complexity(back) == complexity(spec)


@pytest.mark.parametrize("name", ["ResNet-50-D", "SE-ResNet-50", "ResNet-RS-50"])
def test_resnets_pycls_cannot_build_are_one_line_errors(name):
    from spaces.errors import FastscaleError
    from spaces.pycls_writer import to_pycls_config

    with pytest.raises(FastscaleError, match="cannot be exported to pycls|pycls has no") as err:
        to_pycls_config(get_model(name))
    assert "\n" not in str(err.value)


def _random_resnet_stages(rng):
    from spaces.specs import StageSpec

    block = str(rng.choice(["R", "RB"]))
    n = int(rng.integers(1, 5))
    widths = [int(rng.integers(1, 9)) * 8 for _ in range(n)]
    if block == "RB":
        bottlenecks = [1.0] * n
        groups = list(widths)  # one group
    else:
        bottlenecks = [float(rng.choice([0.25, 0.5, 1.0])) for _ in range(n)]
        groups = []
        for w, b in zip(widths, bottlenecks, strict=True):
            inner = int(round(w * b))
            groups.append(int(rng.choice([g for g in (1, 2, 4, inner) if inner % g == 0])))
    return StageSpec(
        block=block,
        depths=tuple(int(rng.integers(1, 4)) for _ in range(n)),
        widths=tuple(widths),
        group_widths=tuple(groups),
        bottlenecks=tuple(bottlenecks),
        strides=tuple(int(rng.choice([1, 2])) for _ in range(n)),
        resolution=int(rng.integers(8, 41)),  # odd sizes too: pools and strided convs agree
        stem_width=int(rng.integers(1, 5)) * 8,
        head_width=int(rng.choice([0, 0, 48])),
        se_ratio=float(rng.choice([0.0, 0.0625, 0.25])),
        in_channels=int(rng.integers(1, 4)),
        num_classes=int(rng.integers(2, 20)),
        stem=str(rng.choice(["simple", "resnet", "deep", "deep-conv"])),
        shortcut=str(rng.choice(["projection", "avgpool"])),
    )


def test_random_resnet_stage_specs_match_analytic():
    """Hooks on real forward passes equal the analytic walk for random ResNet stage lists
    (every stem, both shortcuts, SE on and off, odd resolutions)."""
    import numpy as np
    import torch

    from spaces.build import build_model, measure_complexity

    torch.set_num_threads(1)
    rng = np.random.default_rng(11)
    for _ in range(30):
        spec = _random_resnet_stages(rng)
        model = build_model(spec)
        assert measure_complexity(model, spec.resolution) == complexity(spec), spec
        assert spec_from_dict(spec.to_dict()) == spec


def test_architecture_doc_shows_the_current_block_table():
    from pathlib import Path

    from spaces.blocks import block_table_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    table = doc.split("<!-- block table -->\n")[1].split("<!-- /block table -->")[0]
    assert table == block_table_markdown()


@pytest.mark.parametrize(
    "text, says",
    [
        ("family: resnet\ndepths: [3, 0, 6, 3]\n", "depths must be >= 1"),
        ("family: resnet\ndepths: [3, 4, 6, 3]\ngroups: 5\n", "not divisible by groups=5"),
        ("family: resnet\ndepths: [3, 4, 6, 3]\nblock: ConvNeXt\n", "allowed|one of R, RB"),
    ],
)
def test_cli_refuses_an_impossible_resnet_in_one_line(tmp_path, capsys, text, says):
    import re

    from trials.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code = main(["complexity", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("fastscale: error:")
    assert re.search(says, err)
