"""The tracing front end (spaces.trace): every registered model traced from its built module
reproduces the analytic counts digit for digit; the conventions table equals torch's
FlopCounterMode and, where installed, fvcore, thop and ptflops; outside models go through
`complexity` and `profile predict`, and bad ones fail in one line with exit 2."""

import contextlib
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from planner.profiles._base import ProfileError
from planner.profiles.opfit import fit_ops_profile
from spaces import complexity, get_model, list_models
from spaces.build import build_model
from spaces.op_walk import op_counts
from spaces.outside import TraceError
from spaces.trace import priced_ops, trace_model, trace_module, trace_spec
from tests import trace_models
from tests.test_planner_opmodel import BATCH, _rows, _specs
from trials.cli import main

torch.set_num_threads(1)


@pytest.mark.parametrize("name", list_models())
def test_tracing_a_registered_model_reproduces_the_analytic_counts(name):
    spec = get_model(name).with_resolution(32)  # small: the walk is the same at any size
    traced = trace_spec(spec)
    assert traced.unknown == {}
    assert traced.ops.counts == op_counts(spec).counts  # per kind: flops, inputs, outputs, calls
    assert (traced.flops, traced.params, traced.acts) == tuple(complexity(spec))


def _networks():
    nets = {n: build_model(get_model(n)) for n in ("ResNet-50", "RegNetY-200MF", "EfficientNet-B0")}
    nets["convnext_like"] = trace_models.convnext_like()
    return nets


NETWORKS = ("ResNet-50", "RegNetY-200MF", "EfficientNet-B0", "convnext_like")
SHAPE = (3, 64, 64)


@pytest.fixture(scope="module")
def networks():
    return {name: (net.eval(), trace_module(net, SHAPE, name)) for name, net in _networks().items()}


def _row(traced, convention):
    return next(r for r in traced.conventions() if r["convention"] == convention)


def _library_count(library, net):
    x = torch.zeros(1, *SHAPE)
    if library == "torch":
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(x)
        return counter.get_total_flops(), sum(p.numel() for p in net.parameters())
    if library == "fvcore":
        from fvcore.nn import FlopCountAnalysis, parameter_count

        analysis = FlopCountAnalysis(net, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return analysis.total(), parameter_count(net)[""]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if library == "thop":
            import thop

            flops, params = thop.profile(net, (x,), verbose=False)
            return int(flops), int(params)
        from ptflops import get_model_complexity_info

        return get_model_complexity_info(
            net, SHAPE, as_strings=False, print_per_layer_stat=False, backend="pytorch"
        )


@pytest.mark.parametrize("library", ["torch", "fvcore", "thop", "ptflops"])
@pytest.mark.parametrize("name", NETWORKS)
def test_conventions_equal_the_libraries_themselves(networks, name, library):
    if library != "torch":
        pytest.importorskip(library)
    net, traced = networks[name]
    row = _row(traced, library)
    assert (row["flops"], row["params"]) == tuple(int(v) for v in _library_count(library, net))


def test_conventions_differ_for_the_stated_reasons(networks):
    _, traced = networks["convnext_like"]
    ours = _row(traced, "fastscale")
    assert ours["flops"] == traced.flops and ours["acts"] == traced.acts
    assert _row(traced, "thop")["params"] < traced.params  # the layer scale is missed
    kinds = traced.kinds()
    assert {"layernorm", "gelu", "linear", "dwconv", "add", "mul"} <= set(kinds)
    _, resnet = networks["ResNet-50"]
    torch_row = _row(resnet, "torch")
    biases = sum(r.bias for r in resnet.records)
    assert torch_row["flops"] == 2 * (resnet.flops - biases)  # 2 per multiply-add, no bias


def test_tracing_leaves_a_real_model_untouched_and_lists_unknown_ops():
    net = trace_models.cumulative()
    traced = trace_module(net, (3, 8, 8), "cumulative")
    assert next(net.parameters()).device.type == "cpu"
    assert traced.unknown == {"aten.cumsum.default": 1}
    with pytest.raises(TraceError, match="cumsum"):
        priced_ops(traced)


def test_torchscript_and_export_files_trace_like_the_module(tmp_path):
    net = trace_models.mobilenet_like().eval()
    want = trace_module(net, (3, 32, 32), "m").ops.counts
    script, exported = tmp_path / "m.pt", tmp_path / "m.pt2"
    torch.jit.script(net).save(str(script))
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, 32, 32),)), str(exported))
    assert trace_model(str(script), (3, 32, 32)).ops.counts == want
    assert trace_model(str(exported), (3, 32, 32)).ops.counts == want


@pytest.mark.parametrize(
    "args, message",
    [
        (["tests.trace_models:raises"], "building the model failed: RuntimeError"),
        (["tests.trace_models:branchy"], "cannot be traced: its forward reads tensor values"),
        (["tests.trace_models:mobilenet_like", "--input-shape", "1,32,32"], "fails at input shape"),
        (["tests.trace_models:nope"], "cannot import the factory"),
        (["tests.trace_models:not_a_module"], "returned int, not an nn.Module"),
        (["tests.trace_models:mobilenet_like", "--kwargs", "[1]"], "JSON object"),
        (["foo:bar"], "unknown model library 'foo'"),
        (["missing.pt"], "no such model file"),
        (["RegNetY-200MF", "--input-shape", "3,8,8"], "go with a traced model"),
    ],
)
def test_bad_outside_models_fail_in_one_line(capsys, args, message):
    assert main(["complexity", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastscale: error: ") and "\n" not in err and message in err


def test_an_uninstalled_library_is_named(capsys):
    for library, name in (("timm", "timm:convnext_tiny"), ("torchvision", "torchvision:vit_b_16")):
        try:
            __import__(library)
        except ImportError:
            assert main(["complexity", name]) == 2
            assert f"{library} is not installed" in capsys.readouterr().err


def test_complexity_cli_traces_a_factory_with_kwargs_and_prints_conventions(capsys):
    args = ["tests.trace_models:convnext_like", "--kwargs", '{"width": 8}', "-r", "32"]
    assert main(["complexity", *args, "--conventions", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    want = trace_module(trace_models.convnext_like(width=8), (3, 32, 32), "x")
    assert (out["flops"], out["params"], out["acts"]) == (want.flops, want.params, want.acts)
    assert [r["convention"] for r in out["conventions"]][:3] == ["fastscale", "pycls", "torch"]


@pytest.fixture(scope="module")
def ops_profile(tmp_path_factory):
    """An ops profile calibrated (synthetic timings) on RegNet X/Y only: conv, gconv, BN,
    ReLU, SE; no depthwise conv, no ReLU6, no LayerNorm/GELU."""
    specs = [s for s in _specs(with_effnet=False) if s.block != "Z"]
    costs = {"conv1x1.flops": 1e-12, "gconv.flops": 2e-12, "elems": 1e-10, "calls": 1e-5}
    prof = fit_ops_profile(_rows(specs, costs, {"saved.elems": 4.0, "step": 1e6}), batch=BATCH)
    path = tmp_path_factory.mktemp("prof") / "ops.json"
    prof.save(path)
    return prof, str(path)


def test_a_traced_network_is_priced_like_its_spec(ops_profile):
    prof, _ = ops_profile
    spec = get_model("RegNetY-400MF").with_resolution(48)
    assert prof.price(priced_ops(trace_spec(spec))) == prof.price(spec)


def test_profile_predict_prices_traced_models_and_refuses_kinds_never_calibrated(
    capsys, ops_profile
):
    _, path = ops_profile
    assert main(["profile", "predict", path, "RegNetY-400MF", "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    factory = "tests.trace_models:mobilenet_like"
    assert main(["profile", "predict", path, factory, "-r", "32"]) == 2
    err = capsys.readouterr().err.strip()
    # ReLU6 is priced by the shared one-pass cost ("elems"); the depthwise conv is not
    assert "\n" not in err and "ran no dwconv operations" in err and "relu6" not in err
    with pytest.raises(ProfileError, match="layernorm, gelu.*calibrate --add MODEL"):
        ops_profile[0].price(trace_model("tests.trace_models:convnext_like", (3, 32, 32)).ops)
    plain = trace_model("tests.trace_models:plain_convnet", (3, 32, 32))
    relu6 = trace_model("tests.trace_models:plain_convnet", (3, 32, 32), {"relu6": True})
    assert ops_profile[0].price(relu6.ops)["seconds_per_step"] == pytest.approx(
        ops_profile[0].price(plain.ops)["seconds_per_step"]
    )
    assert want["memory_bytes"] > 0


def test_candidates_filters_and_ranks_registered_and_traced_models(capsys, ops_profile):
    _, path = ops_profile
    factory = "tests.trace_models:convnext_like"
    args = ["candidates", "RegNetY-200MF", "RegNetX-400MF", factory, "--max-params", "5M"]
    assert main([*args, "-r", "32", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in ranked] == ["RegNetY-200MF", factory, "RegNetX-400MF"]
    assert [r["fits"] for r in ranked] == [True, True, False]
    assert ranked[2]["miss"].startswith("params +")
    assert ranked[1]["params"] == trace_model(factory, (3, 32, 32)).params
    # a memory budget prices every candidate: the traced ConvNeXt-like has kinds never calibrated
    assert main([*args, "--max-memory", "1GB", "--profile", path]) == 2
    assert "layernorm" in capsys.readouterr().err
    assert main(["candidates", "RegNetY-200MF", "--max-memory", "1GB", "--profile", path]) == 0


def test_complexity_of_a_registered_model_stays_free_of_torch():
    code = (
        "import sys\nfrom trials.cli import main\n"
        "assert main(['complexity', 'RegNetY-4.0GF', '--json']) == 0\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr.strip().endswith("False"), out.stderr


def _autograd_saved_elements(model, x) -> float:
    """Elements (4-byte units) of the activations autograd keeps for the backward pass of one
    training forward, weights excluded, each storage once."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes() / 4
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values())


@pytest.mark.parametrize(
    "factory, kwargs",
    [
        ("mobilenet_like", {"width": 8, "relu6": False}),
        ("mobilenet_like", {"width": 8}),  # ReLU6 saves its input: one tensor more
        ("convnext_like", {"width": 8}),
        ("plain_convnet", {"width": 8}),
    ],
)
def test_saved_elements_feature_counts_what_autograd_keeps(factory, kwargs):
    """The memory model's "saved.elems" (planner.profiles.opmodel) against the tensors autograd
    really saves: within 15 % for ReLU and ReLU6 MobileNet-like, ConvNeXt-like and plain nets
    (the old per-kind features missed MobileNet's linear-bottleneck BN outputs)."""
    from planner.profiles.opmodel import MEMORY_FEATURES, feature_matrix

    torch.manual_seed(0)
    model = getattr(trace_models, factory)(**kwargs)
    ops = trace_module(model, (3, 32, 32), factory).ops
    counted = float(feature_matrix(ops, 1, MEMORY_FEATURES, ["saved.elems"])[0])
    saved = _autograd_saved_elements(model, torch.randn(2, 3, 32, 32)) / 2
    assert counted == pytest.approx(saved, rel=0.15)


def test_a_linear_at_every_position_is_priced_as_a_pointwise_conv():
    """ConvNeXt's MLP (nn.Linear on an (N, H, W, C) tensor) is one large GEMM, a 1×1 conv by
    another name; the classifier head (one row per image) stays `linear`."""
    from examples.nets import convnext_like

    w = 8
    traced = trace_module(convnext_like(width=w, num_classes=10), (3, 32, 32))
    linears = [r for r in traced.records if r.module == "Linear"]
    head, mlp = linears[-1], linears[:-1]
    assert head.kind == "linear" and head.macs == 2 * w * 10
    assert mlp and all(r.kind == "conv1x1" for r in mlp)
    # the first block's expansion: 8x8 positions (32 px, stride-4 stem), w -> 4w channels
    assert mlp[0].macs == 8 * 8 * w * 4 * w and mlp[0].outputs == 8 * 8 * 4 * w
    assert mlp[0].inputs == 8 * 8 * w  # activations read, not the weight
