"""Step timing: sane numbers, both modes, module state restored, bad requests refused."""

import pytest
import torch

from spaces.build import build_model
from spaces.complexity import complexity
from spaces.errors import FastscaleError
from trials.timing.protocol import TimingProtocol
from trials.timing.step_time import time_model


def proto(steps, warmup):
    """A fixed warm-up of `warmup` steps (min = max), then `steps` timed steps."""
    return TimingProtocol(steps=steps, rounds=1, min_warmup=warmup, max_warmup=warmup)


def test_train_and_infer_times_are_positive_and_consistent(tiny_spec):
    tr = time_model(tiny_spec, batch_size=8, protocol=proto(3, 1), threads=1)
    inf = time_model(tiny_spec, batch_size=8, protocol=proto(3, 1), threads=1, mode="infer")
    for r in (tr, inf):
        assert r["seconds_per_batch"] > 0 and r["spread"] >= 0 and len(r["times"]) == 3
        assert r["seconds_per_image"] == pytest.approx(r["seconds_per_batch"] / 8)
        assert r["seconds_per_batch"] == sorted(r["times"])[1]  # the median of three
        assert len(r["warmup_times"]) == 1 and 0 < r["cpu_share"]
        assert (r["flops"], r["params"], r["acts"]) == tuple(complexity(tiny_spec))
    assert (tr["mode"], inf["mode"], tr["threads"]) == ("train", "infer", 1)


def test_resolution_override_changes_the_counted_model(tiny_spec):
    r = time_model(tiny_spec, batch_size=2, resolution=32, protocol=proto(1, 0), threads=1)
    assert r["resolution"] == 32
    assert r["flops"] == complexity(tiny_spec.with_resolution(32)).flops


def test_timing_restores_weights_and_batchnorm_statistics(tiny_spec):
    model = build_model(tiny_spec)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    time_model(tiny_spec, batch_size=4, protocol=proto(2, 1), threads=1, model=model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training  # mode restored too
    assert all(p.grad is None for p in model.parameters())


def test_cpu_clock_counts_process_cpu_seconds(tiny_spec):
    r = time_model(tiny_spec, batch_size=4, protocol=proto(3, 1), threads=1, clock="cpu")
    assert r["clock"] == "cpu" and r["seconds_per_batch"] > 0


def test_bad_requests(tiny_spec):
    with pytest.raises(FastscaleError, match="clock"):
        time_model(tiny_spec, clock="sundial")
    with pytest.raises(FastscaleError, match="wall clock on cuda"):
        time_model(tiny_spec, clock="cpu", device="cuda")
    with pytest.raises(FastscaleError, match="mode"):
        time_model(tiny_spec, mode="backward")
    with pytest.raises(FastscaleError, match="resolution"):
        time_model(tiny_spec, resolution=4)
    with pytest.raises(FastscaleError, match="device"):
        time_model(tiny_spec, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(FastscaleError, match="no CUDA"):
            time_model(tiny_spec, device="cuda")


def test_time_cli_times_an_outside_model(capsys):
    """`fastscale time` takes a factory (a model fastscale did not define): its record carries
    the trace's counts; a ReLU6 net with (N, K) logits trains with cross-entropy."""
    import json

    from spaces.trace import trace_model
    from trials.cli import main

    factory = "tests.trace_models:mobilenet_like"
    argv = ["time", factory, "--input-shape", "3,16,16", "--kwargs", '{"width": 4}']
    argv += ["--batch-size", "2", "--steps", "1", "--rounds", "1", "--warmup", "0"]
    code = main([*argv, "--max-warmup", "0", "--threads", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    r = json.loads(captured.out)
    traced = trace_model(factory, (3, 16, 16), {"width": 4})
    assert (r["flops"], r["params"], r["acts"]) == (traced.flops, traced.params, traced.acts)
    assert r["name"] == factory and r["input_shape"] == [3, 16, 16] and r["resolution"] == 16
    assert r["seconds_per_batch"] > 0


def test_outside_model_without_logits_trains_on_its_mean():
    """An output that is not (N, K) logits (a bare conv's feature map) is trained on its mean,
    and its peak step memory is measured all the same; an operation with no kind is refused."""
    from trials.timing.outside import OutsideModel

    conv = OutsideModel("torch.nn:Conv2d", (3, 16, 16), {"in_channels": 3, "out_channels": 4,
                                                        "kernel_size": 3})  # fmt: skip
    r = time_model(conv, batch_size=2, protocol=proto(1, 0), threads=1, memory=True)
    assert r["memory_bytes"] > 0 and r["flops"] == 3 * 9 * 4 * 14 * 14 + 4 * 14 * 14
    with pytest.raises(FastscaleError, match="no fastscale kind"):
        cumulative = OutsideModel("tests.trace_models:cumulative", (3, 8, 8))
        time_model(cumulative, batch_size=2, protocol=proto(1, 0), threads=1)


def test_time_cli_refuses_a_bad_factory_in_one_line(capsys):
    from trials.cli import main

    code = main(["time", "tests.trace_models:raises", "--input-shape", "3,16,16"])
    err = capsys.readouterr().err
    assert code == 2 and "this factory always fails" in err and len(err.strip().splitlines()) == 1


def test_time_cli_memory_measures_the_peak_profile_predict_prices(capsys):
    """`time --memory` reports each model's peak training-step bytes, the quantity a profile's
    memory model predicts; without --mode train it is refused in one line."""
    import json

    from trials.cli import main

    argv = ["time", "RegNetX-200MF", "ResNet-18", "-r", "32", "--batch-size", "2", "--steps", "1"]
    argv += ["--rounds", "1", "--warmup", "0", "--max-warmup", "0", "--threads", "1", "--json"]
    code = main([*argv, "--memory"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    small, resnet = json.loads(captured.out)
    assert small["memory_bytes"] > 0 and resnet["memory_bytes"] > small["memory_bytes"]
    code = main([*argv, "--memory", "--mode", "infer"])
    err = capsys.readouterr().err
    assert code == 2 and "--mode train" in err and len(err.strip().splitlines()) == 1
    assert main(argv) == 0  # without the flag: no measurement
    assert all(r["memory_bytes"] is None for r in json.loads(capsys.readouterr().out))
