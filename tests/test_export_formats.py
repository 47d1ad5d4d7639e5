"""`fastscale export --format torchscript|onnx`: the written file loads back (TorchScript with
torch.jit, ONNX with onnx's checker and onnxruntime) and computes what the built module
computes."""

from __future__ import annotations

import json
import sys

import torch

from spaces.build import build_model
from spaces.registry import get_model
from trials.cli import main

from .extras import needs

SMALL = ["RegNetX-200MF", "-r", "32", "--num-classes", "10", "--in-channels", "1"]


def _spec():
    return get_model("RegNetX-200MF").replace(resolution=32, num_classes=10, in_channels=1)


def test_torchscript_loads_and_matches_the_module(tmp_path, capsys):
    out = tmp_path / "net.pt"
    assert main(["export", *SMALL, "--format", "torchscript", "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["format"] == "torchscript" and record["bytes"] == out.stat().st_size > 0
    assert record["input_shape"] == [1, 1, 32, 32]
    loaded = torch.jit.load(str(out))
    torch.manual_seed(0)
    ref = build_model(_spec()).eval()  # export builds with seed 0 as well
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), ref(x), atol=1e-5)


def test_torchscript_takes_trained_weights(tmp_path):
    torch.manual_seed(1)
    trained = build_model(_spec())
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"model": trained.state_dict(), "ema": trained.state_dict()}, ckpt)
    out = tmp_path / "net.pt"
    assert main(["export", *SMALL, "--format", "torchscript", "--out", str(out),
                 "--checkpoint", str(ckpt)]) == 0  # fmt: skip
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(out))(x), trained.eval()(x), atol=1e-5)
    # weights of another network: one line, exit 2
    other = tmp_path / "other.pt"
    torch.save({"model": build_model(get_model("RegNetX-400MF")).state_dict()}, other)
    assert main(["export", *SMALL, "--format", "torchscript", "--out", str(out),
                 "--checkpoint", str(other)]) == 2  # fmt: skip


def test_binary_formats_need_out(capsys):
    assert main(["export", "RegNetX-200MF", "--format", "torchscript"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out FILE" in err


def test_text_formats_report_what_they_wrote(tmp_path, capsys):
    out = tmp_path / "x.yaml"
    assert main(["export", "RegNetX-200MF", "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {"spec": "RegNetX-200MF", "format": "pycls", "out": str(out),
                      "bytes": out.stat().st_size}  # fmt: skip


# float32 kernels of onnxruntime and of torch sum in different orders, so the logits differ
# in their last bits; 1e-4 absolute leaves room for that and still catches a wrong weight,
# layer or input layout
ONNX_ATOL = 1e-4


@needs("onnx", "onnxscript", "onnxruntime")
def test_onnx_runs_in_onnxruntime_and_matches_the_module(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime

    out = tmp_path / "net.onnx"
    assert main(["export", *SMALL, "--format", "onnx", "--out", str(out)]) == 0
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, 32, 32]

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    torch.manual_seed(0)
    ref = build_model(_spec()).eval()  # export builds with seed 0 as well
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(5))  # batch 3, not 1
    with torch.no_grad():
        expected = ref(x).numpy()
    (got,) = session.run(["logits"], {"image": x.numpy()})
    assert got.shape == (3, 10)
    assert np.abs(got - expected).max() <= ONNX_ATOL
    assert np.abs(expected).max() > 100 * ONNX_ATOL  # the logits are not all near zero


def test_onnx_without_its_package_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    # an entry None in sys.modules is how Python itself marks a module as unimportable:
    # find_spec and import both report it missing, whatever is installed
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert main(["export", *SMALL, "--format", "onnx", "--out", str(tmp_path / "n.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install onnx onnxscript" in err
    assert not (tmp_path / "n.onnx").exists()
