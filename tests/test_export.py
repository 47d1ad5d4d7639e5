"""pycls export: the YAML parses, carries pycls's key names and values, and reads back into a
spec with identical complexity."""

import pytest
import yaml

from spaces import FastscaleError, StageSpec, complexity, get_model
from spaces.pycls_format import ExportError, pycls_test_size
from spaces.pycls_reader import spec_from_pycls
from spaces.pycls_writer import pycls_yaml, to_pycls_config


def _load(spec) -> dict:
    return yaml.safe_load(pycls_yaml(spec))


def test_regnety_values():
    cfg = _load(get_model("RegNetY-4.0GF"))
    assert cfg["MODEL"] == {"TYPE": "regnet", "NUM_CLASSES": 1000, "ACTIVATION_FUN": "relu"}
    assert cfg["REGNET"] == {
        "STEM_TYPE": "simple_stem_in",
        "STEM_W": 32,
        "BLOCK_TYPE": "res_bottleneck_block",
        "STRIDE": 2,
        "DEPTH": 22,
        "W0": 96,
        "WA": 31.41,
        "WM": 2.24,
        "GROUP_W": 64,
        "BOT_MUL": 1.0,
        "HEAD_W": 0,
        "SE_ON": True,
        "SE_R": 0.25,
    }
    assert cfg["TRAIN"] == {"IM_SIZE": 224} and cfg["TEST"] == {"IM_SIZE": 256}


def test_regnetx_has_no_se():
    cfg = _load(get_model("RegNetX-600MF", num_classes=10, resolution=64))
    assert cfg["REGNET"]["SE_ON"] is False and "SE_R" not in cfg["REGNET"]
    assert cfg["MODEL"]["NUM_CLASSES"] == 10 and cfg["TRAIN"]["IM_SIZE"] == 64


def test_regnetz_values():
    cfg = _load(get_model("RegNetZ-4GF"))
    r = cfg["REGNET"]
    assert cfg["MODEL"]["ACTIVATION_FUN"] == "silu"
    assert r["BLOCK_TYPE"] == "res_bottleneck_linear_block"
    assert (r["DEPTH"], r["W0"], r["WA"], r["WM"], r["GROUP_W"]) == (28, 48, 14.5, 2.226, 8)
    assert r["BOT_MUL"] == 4.0 and r["SE_ON"] is True and r["HEAD_W"] == 0
    assert cfg["TRAIN"]["IM_SIZE"] == 256


def test_stage_spec_is_anynet():
    s = get_model("RegNetY-800MF").stages()
    cfg = _load(s)
    a = cfg["ANYNET"]
    assert cfg["MODEL"]["TYPE"] == "anynet"
    assert a["STEM_TYPE"] == "simple_stem_in" and a["BLOCK_TYPE"] == "res_bottleneck_block"
    assert a["DEPTHS"] == list(s.depths) and a["WIDTHS"] == list(s.widths)
    assert a["GROUP_WS"] == list(s.group_widths) and a["STRIDES"] == [2, 2, 2, 2]
    assert a["BOT_MULS"] == [1.0] * 4 and a["SE_ON"] is True and a["SE_R"] == 0.25


def test_efficientnet_values():
    cfg = _load(get_model("EfficientNet-B0"))
    assert cfg["MODEL"] == {"TYPE": "effnet", "NUM_CLASSES": 1000, "ACTIVATION_FUN": "silu"}
    assert cfg["EN"] == {
        "STEM_W": 32,
        "DEPTHS": [1, 2, 2, 3, 3, 4, 1],
        "WIDTHS": [16, 24, 40, 80, 112, 192, 320],
        "EXP_RATIOS": [1, 6, 6, 6, 6, 6, 6],
        "KERNELS": [3, 3, 5, 3, 5, 5, 3],
        "STRIDES": [1, 2, 2, 2, 1, 2, 1],
        "HEAD_W": 1280,
        "SE_R": 0.25,
    }


def test_header_names_origin_and_complexity():
    spec = get_model("RegNetY-4.0GF")
    text = pycls_yaml(spec)
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "fastscale" in header[0]
    assert any(str(complexity(spec).flops) in line and "20646656" in line for line in header)


def test_in_channels_is_a_comment_not_a_failure():
    text = pycls_yaml(get_model("RegNetX-200MF", in_channels=1))
    assert "# NOTE: in_channels=1 cannot be expressed in pycls" in text
    assert "in_channels=" not in pycls_yaml(get_model("RegNetX-200MF"))


def test_pycls_test_size_follows_pycls_configs():
    # pycls's EfficientNet configs: 224 -> 256, 300 -> 342, 456 -> 522
    assert [pycls_test_size(r) for r in (224, 300, 456)] == [256, 342, 522]


@pytest.mark.parametrize(
    "spec",
    [
        get_model("RegNetY-4.0GF"),
        get_model("RegNetX-12GF", num_classes=10, resolution=128),
        get_model("RegNetZ-500MF"),
        get_model("RegNetZ-4GF"),
        get_model("EfficientNet-B0"),
        get_model("EfficientNet-B4", num_classes=37),
        get_model("RegNetY-800MF").stages(),
        get_model("RegNetZ-500MF").stages().replace(strides=(2, 1, 2, 2)),
    ],
    ids=lambda s: f"{s.family}-{s.block}",
)
def test_round_trip(spec):
    back = spec_from_pycls(yaml.safe_load(pycls_yaml(spec)))
    assert back == spec
    assert complexity(back) == complexity(spec)


def test_mb_stage_spec_round_trips_as_efficientnet():
    s = get_model("EfficientNet-B1").stages()
    cfg = to_pycls_config(s)
    assert cfg["MODEL"]["TYPE"] == "effnet"
    back = spec_from_pycls(cfg)
    assert back.family == "efficientnet" and complexity(back) == complexity(s)


def test_pycls_defaults_fill_omitted_keys():
    # a minimal hand-written pycls RegNetX config: NUM_CLASSES falls back to pycls's 10
    cfg = yaml.safe_load(
        "MODEL: {TYPE: regnet}\n"
        "REGNET: {DEPTH: 13, W0: 24, WA: 36.44, WM: 2.49, GROUP_W: 8}\n"
        "TRAIN: {IM_SIZE: 224}\n"
    )
    spec = spec_from_pycls(cfg)
    assert spec == get_model("RegNetX-200MF", num_classes=10)


@pytest.mark.parametrize(
    "cfg, words",
    [
        ({"MODEL": {"TYPE": "vgg"}}, "MODEL.TYPE 'vgg' is not supported"),
        ({"MODEL": {"TYPE": "resnet"}}, "MODEL.DEPTH 0 is not supported; allowed: 50, 101"),
        ({"MODEL": {"TYPE": "resnet", "DEPTH": 50}}, "STRIDE_1X1 True"),
        ({"MODEL": {"TYPE": "regnet"}, "REGNET": {"STEM_TYPE": "res_stem_in"}}, "STEM_TYPE"),
        (
            {"MODEL": {"TYPE": "regnet", "ACTIVATION_FUN": "silu"}, "REGNET": {}},
            "not a fastscale block",
        ),
        ({"MODEL": {"TYPE": "anynet"}, "ANYNET": {"DEPTHS": [1]}}, "ANYNET.WIDTHS"),
        ({"MODEL": {"TYPE": "regnet"}, "REGNET": {"W0": 20}}, "multiple of 8"),
        ({"MODEL": {"TYPE": "effnet", "ACTIVATION_FUN": "relu"}}, "allowed: silu"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_pycls_configs(cfg, words):
    with pytest.raises(FastscaleError, match=words):
        spec_from_pycls(cfg)


def test_export_error_is_a_fastscale_error():
    assert issubclass(ExportError, FastscaleError)


def test_stage_spec_with_custom_head():
    s = StageSpec("X", (1, 2), (32, 64), (8, 8), (1, 1), (2, 1), head_width=256, num_classes=5)
    back = spec_from_pycls(to_pycls_config(s))
    assert back == s and to_pycls_config(s)["ANYNET"]["HEAD_W"] == 256
