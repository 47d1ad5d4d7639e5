"""Spec validation, spec files and units: bad input gets a clear message."""

import json

import pytest

from spaces import load_specs, parse_quantity, save_specs, spec_from_dict
from spaces.registry import get_model
from spaces.specs import EfficientNetSpec, RegNetSpec, SpecError, StageSpec
from spaces.units import UnitError, format_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("400MF", 400_000_000),
        ("4GF", 4_000_000_000),
        ("4.0GF", 4_000_000_000),
        ("4e9", 4_000_000_000),
        ("20M", 20_000_000),
        ("12000", 12000),
        ("1.6gf", 1_600_000_000),
        (" 32K ", 32000),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "4XF", "GF", "-4GF", "0", "4 G F", "nan"])
def test_parse_quantity_rejects(text):
    with pytest.raises(UnitError, match="400MF"):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["-4GF", "0", "0MF"])
def test_non_positive_quantity_says_positive(text):
    with pytest.raises(UnitError, match="must be a positive quantity"):
        parse_quantity(text)


def test_format_quantity():
    assert format_quantity(3_973_301_344, "F") == "4.0GF"
    assert format_quantity(20_646_656) == "20.6M"
    assert format_quantity(512) == "512"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"w0": 20}, "w0 must be a positive multiple of 8"),
        ({"wm": 1.0}, "wm must be > 1"),
        ({"wa": -1}, r"wa must be a number in \[0, 1048576\], got -1"),
        ({"block": "Q"}, "block must be one of X, Y, Z"),
        ({"depth": 0}, r"depth must be an integer in \[1, 10000\]"),
        ({"resolution": 4}, r"resolution must be an integer in \[8, 16384\]"),
        ({"wa": 0.5, "wm": 1.01, "w0": 8, "depth": 10}, "skip a stage"),
    ],
)
def test_regnet_validation(kwargs, message):
    base = {"block": "Y", "depth": 22, "w0": 96, "wa": 31.41, "wm": 2.24, "group_width": 64}
    with pytest.raises(SpecError, match=message):
        RegNetSpec(**{**base, **kwargs})


def test_stage_spec_validation():
    good = {
        "block": "X",
        "depths": (1, 2),
        "widths": (32, 64),
        "group_widths": (8, 16),
        "bottlenecks": (1, 1),
        "strides": (2, 2),
    }
    StageSpec(**good)
    with pytest.raises(SpecError, match="group width 128 must be in"):
        StageSpec(**{**good, "group_widths": (8, 128)})
    with pytest.raises(SpecError, match="must divide the inner width"):
        StageSpec(**{**good, "group_widths": (8, 24)})
    with pytest.raises(SpecError, match="widths has 1 entries"):
        StageSpec(**{**good, "widths": (32,)})
    with pytest.raises(SpecError, match="depthwise"):
        StageSpec(**{**good, "block": "MB"})


def test_spec_dict_round_trip_for_every_family():
    for spec in (
        get_model("RegNetY-4.0GF"),
        get_model("RegNetZ-500MF").stages(),
        get_model("EfficientNet-B2"),
    ):
        again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec


def test_every_family_lists_each_field_once_in_file_order():
    import dataclasses

    from spaces.specs import FAMILIES

    for family, cls in FAMILIES.items():
        names = [f.name for f in dataclasses.fields(cls)]
        assert sorted(cls.FILE_KEYS) == sorted(names), family


def test_every_family_is_registered_by_its_decorator_and_exported():
    """Families register through @register_family; importing any spaces module registers all
    of them (the package imports spaces.registry, which imports every family module), and
    spaces.Spec and spaces.__all__ name every family's class."""
    import subprocess
    import sys

    code = (
        "import typing; from spaces.specs import FAMILIES, spec_from_dict; import spaces; "
        "assert list(FAMILIES) == ['regnet', 'anynet', 'efficientnet', 'resnet'], FAMILIES; "
        "assert set(typing.get_args(spaces.Spec)) == set(FAMILIES.values()); "
        "assert {c.__name__ for c in FAMILIES.values()} <= set(spaces.__all__); "
        "assert spec_from_dict({'family': 'resnet', 'depths': [1]}).family == 'resnet'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from spaces.families import register_family
    from spaces.resnet import ResNetSpec

    assert register_family(ResNetSpec) is ResNetSpec  # the same class again: a no-op
    with pytest.raises(TypeError, match="family 'resnet' is ResNetSpec"):
        register_family(type("OtherSpec", (), {"family": "resnet"}))


def test_spec_files_keep_their_key_order():
    # a file format: the shared fields' move into NetworkSpec changed no file
    regnet = ["family", "block", "depth", "w0", "wa", "wm", "group_width", "bottleneck",
              "resolution", "stem_width", "head_width", "se_ratio", "in_channels", "num_classes"]  # fmt: skip
    resnet = ["family", "depths", "block", "widths", "bottleneck", "groups", "stem", "shortcut",
              "se_ratio", "resolution", "stem_width", "head_width", "in_channels", "num_classes"]  # fmt: skip
    stages = ["family", "block", "depths", "widths", "group_widths", "bottlenecks", "strides",
              "kernels", "resolution", "stem_width", "head_width", "se_ratio", "in_channels",
              "num_classes", "stem", "shortcut"]  # fmt: skip
    assert list(get_model("RegNetY-4.0GF").to_dict()) == regnet
    assert list(get_model("ResNet-RS-50").to_dict()) == resnet
    assert list(get_model("ResNet-RS-50").stages().to_dict()) == stages
    assert repr(get_model("ResNet-18")).startswith("ResNetSpec(depths=(2, 2, 2, 2), block='RB'")
    with pytest.raises(SpecError, match="allowed: depths, block, widths, bottleneck, groups"):
        spec_from_dict({"family": "resnet", "depths": [1], "colour": 1})


def test_spec_file_defaults_and_errors(tmp_path):
    path = tmp_path / "y.json"
    path.write_text(
        '{"family": "regnet", "block": "Y", "depth": 22, "w0": 96, "wa": 31.41, "wm": 2.24, "group_width": 64, "resolution": 224}'
    )
    (spec,) = load_specs(path)
    assert spec == get_model("RegNetY-4.0GF")
    path.write_text(
        '{"family": "regnet", "block": "Y", "depth": 22, "w0": 96, "wa": 31.41, "wm": 2.24, "group_width": 64, "colour": 1}'
    )
    with pytest.raises(SpecError, match="regnet spec: unknown field.*colour.*allowed"):
        load_specs(path)
    path.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_specs(path)
    with pytest.raises(SpecError, match="cannot read"):
        load_specs(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="family must be one of"):
        spec_from_dict({"family": "convnext"})  # (resnet is a family since issue 10)


def test_save_and_load_yaml_list_keeps_order(tmp_path):
    specs = [
        get_model("RegNetX-200MF"),
        get_model("EfficientNet-B0"),
        get_model("RegNetZ-4GF").stages(),
    ]
    save_specs(tmp_path / "many.yaml", specs)
    assert load_specs(tmp_path / "many.yaml") == specs
    save_specs(tmp_path / "one.json", specs[0])
    assert isinstance(json.loads((tmp_path / "one.json").read_text()), dict)


def test_efficientnet_needs_a_head():
    with pytest.raises(SpecError, match="head_width"):
        EfficientNetSpec(depths=(1,) * 7, widths=(16,) * 7, head_width=0)
