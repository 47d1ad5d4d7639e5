"""timm / torchvision names: the same architecture by the published parameter counts (timm's
CUDA-built torchvision does not load with the CPU torch here, so neither can be imported in
this environment; where they can, the last test builds them and compares), `timm:` names,
and `export --format timm`."""

import pytest

from spaces import complexity, get_model
from spaces.errors import FastscaleError
from spaces.interop import timm_code
from spaces.registry import EXTERNAL, external_name
from spaces.specs import SpecError
from trials.cli import main

# torchvision's weights metadata ("num_params", torchvision.models.*_Weights).
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "regnet_y_400mf": 4_344_144,
    "regnet_y_1_6gf": 11_202_430,
    "regnet_y_3_2gf": 19_436_338,
    "regnet_y_16gf": 83_590_140,
    "regnet_y_32gf": 145_046_770,
    "regnet_x_800mf": 7_259_656,
    "regnet_x_1_6gf": 9_190_136,
    "regnet_x_3_2gf": 15_296_552,
    "regnet_x_8gf": 39_572_648,
    "regnet_x_16gf": 54_278_536,
    "regnet_x_32gf": 107_811_560,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
}
# torchvision models that share a name pattern but NOT the pycls architecture (params differ).
TORCHVISION_DIFFERENT = {
    "RegNetX-400MF": 5_495_976,
    "RegNetY-800MF": 6_432_512,
    "RegNetY-8.0GF": 39_381_472,
}
# timm's published parameter counts (millions, two decimals, timm's results tables).
TIMM_PARAMS_M = {
    "resnet18": 11.69,
    "resnet50": 25.56,
    "resnet200": 64.67,
    "resnext50_32x4d": 25.03,
    "resnet50d": 25.58,
    "seresnet50": 28.09,
    "resnetrs50": 35.69,
    "resnetrs101": 63.62,
    "resnetrs152": 86.62,
    "resnetrs200": 93.21,
    "resnetrs270": 129.86,
    "resnetrs350": 163.96,
    "resnetrs420": 191.89,
    "regnetx_002": 2.68,
    "regnetx_320": 107.81,
    "regnety_040": 20.65,
    "regnety_320": 145.05,
    "regnetz_005": 7.12,
    "regnetz_040": 27.12,
    "efficientnet_b0": 5.29,
}


def test_every_torchvision_name_has_the_published_parameter_count():
    mapped = {v["torchvision"]: k for k, v in EXTERNAL.items() if "torchvision" in v}
    assert set(mapped) == set(TORCHVISION_PARAMS)
    for tv, ours in mapped.items():
        assert complexity(get_model(ours)).params == TORCHVISION_PARAMS[tv], tv
    for ours, theirs in TORCHVISION_DIFFERENT.items():
        assert complexity(get_model(ours)).params != theirs
        assert external_name(ours, "torchvision") is None


@pytest.mark.parametrize("timm_name", TIMM_PARAMS_M)
def test_timm_names_have_the_published_parameter_count(timm_name):
    spec = get_model(f"timm:{timm_name}")
    assert round(complexity(spec).params / 1e6, 2) == TIMM_PARAMS_M[timm_name]


def test_timm_and_torchvision_names_resolve_and_bad_ones_are_one_line():
    assert get_model("timm:regnety_040") == get_model("RegNetY-4.0GF")
    assert get_model("torchvision:resnext50_32x4d") == get_model("ResNeXt-50-32x4d")
    for bad, says in (("timm:resnet9000", "did you mean"), ("keras:resnet50", "allowed: timm")):
        with pytest.raises(SpecError, match=says) as err:
            get_model(bad)
        assert "\n" not in str(err.value)


def test_export_timm_names_a_registered_twin_or_writes_the_constructor():
    assert "create_model(model_name='resnetrs50'" in timm_code(get_model("ResNet-RS-50"))
    assert "'regnety_040'" in timm_code(get_model("RegNetY-4.0GF", resolution=288))
    z = timm_code(get_model("RegNetZ-4GF").replace(depth=20))
    assert "RegNetCfg(depth=20" in z and "linear_out=True" in z
    rs = timm_code(get_model("ResNet-RS-50").replace(depths=(2, 2, 2, 2)))
    assert "stem_type='deep', stem_width=32, avg_down=True, replace_stem_pool=True" in rs
    assert "rd_ratio=0.25" in rs
    x152 = timm_code(get_model("ResNeXt-152-32x4d"))  # timm registers no resnext152
    assert "cardinality=32, base_width=4" in x152 and "layers=[3, 8, 36, 3]" in x152


def test_export_timm_refuses_what_timm_cannot_express():
    from planner.scale import scale_spec

    for spec in (
        scale_spec(get_model("RegNetY-4.0GF"), "w", 2.0),  # stage list, not (d, w0, wa, wm)
        get_model("EfficientNet-B0").replace(depths=(1, 1, 1, 1, 1, 1, 1)),
        scale_spec(get_model("ResNeXt-50-32x4d"), "dWr", 3.0),  # cardinality differs per stage
    ):
        with pytest.raises(FastscaleError, match="cannot express.*pycls") as err:
            timm_code(spec)
        assert "\n" not in str(err.value)


def test_export_timm_refuses_a_resnet_of_other_than_four_stages():
    """timm's ResNet.forward_features runs layer1 .. layer4 by name (timm/models/resnet.py):
    a fifth stage would be built and never run, two stages fail in the forward pass."""
    s = get_model("ResNet-50").stages()
    assert "timm.models.resnet.ResNet(" in timm_code(s) or "resnet50" in timm_code(s)
    per_stage = ("depths", "widths", "group_widths", "bottlenecks", "strides", "kernels")
    five = s.replace(**{k: (*getattr(s, k), getattr(s, k)[-1]) for k in per_stage})
    two = s.replace(**{k: getattr(s, k)[:2] for k in per_stage})
    for spec, n in ((five, 5), (two, 2)):
        with pytest.raises(FastscaleError, match=f"{n} stages \\(timm's ResNet runs exactly four"):
            timm_code(spec)


def test_cli_models_shows_names_and_export_timm_exits_2_on_bad_input(capsys, tmp_path):
    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("models", "ResNet-RS-5*")
    assert code == 0 and "resnetrs50" in out
    code, out, _ = run("export", "timm:seresnet50", "--format", "timm")
    assert code == 0 and "'seresnet50'" in out
    spec = tmp_path / "y.json"
    run("scale", "RegNetY-4.0GF", "--factor", "2", "--strategy", "w", "--out", str(spec))
    code, _, err = run("export", str(spec), "--format", "timm")
    assert code == 2 and err.count("\n") == 1 and "allowed:" in err
    code, _, err = run("complexity", "timm:nope")
    assert code == 2 and "known:" in err


def test_built_timm_and_torchvision_models_have_our_parameter_count():
    """Runs where timm and a torchvision for the installed torch import (not here)."""
    timm = pytest.importorskip("timm")
    torchvision = pytest.importorskip("torchvision")
    for name, libs in EXTERNAL.items():
        ours = complexity(get_model(name)).params
        model = timm.create_model(libs["timm"], pretrained=False)
        assert sum(p.numel() for p in model.parameters()) == ours, name
        if "torchvision" in libs:
            model = getattr(torchvision.models, libs["torchvision"])()
            assert sum(p.numel() for p in model.parameters()) == ours, name
