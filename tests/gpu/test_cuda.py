"""Training, timing, memory and calibration on CUDA, and a study with fractional GPUs: the
code paths a CPU machine never runs (mixed precision, channels-last, CUDA peak memory,
GPU resources in Ray). Tiny real models and a Fashion-MNIST slice, as the CPU tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spaces.build import build_model
from spaces.registry import get_model
from tests.fixtures_train import make_tiny_spec
from trials.timing.protocol import TimingProtocol

pytestmark = pytest.mark.gpu


def _config(**kw):
    from trials.training.recipe import TrainConfig

    base = dict(epochs=2, batch_size=32, train_size=512, val_size=256, resolution=16,
                precise_bn=128, threads=1, seed=3, device="cuda")  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_training_on_cuda_uses_amp_and_channels_last_and_learns():
    from trials.data.datasets import load_dataset
    from trials.training.train import _Run, train

    cfg = _config()
    result = train(make_tiny_spec(), cfg)
    assert result["device"] == "cuda" and [r["epoch"] for r in result["epochs"]] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result["epochs"])
    assert 0 <= result["error"] < 0.9  # ten classes: better than chance after 2 epochs
    assert all(r["peak_mem"] > 0 for r in result["epochs"])  # CUDA peak, not the CPU's 0
    # the run's model and precision: channels-last weights, bfloat16 or float16 autocast
    data = load_dataset("fashion-mnist", 16, train_size=64, val_size=32, seed=3)
    spec = make_tiny_spec().replace(num_classes=data.num_classes, in_channels=data.in_channels)
    run = _Run(spec, cfg, data, torch.device("cuda"), build_model(spec))
    convs = [p for p in run.model.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert run.amp in (torch.bfloat16, torch.float16)
    assert run.scaler.is_enabled() == (run.amp == torch.float16)


def _own_peak(model, x, y, amp) -> int:
    """One SGD-with-momentum step measured here, independently of trials.timing.memory:
    torch.cuda.max_memory_allocated after resetting the peak, momentum buffers existing."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    for measured in (False, True):
        opt.zero_grad(set_to_none=True)
        if measured:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=amp):
            out = model(x)
        F.cross_entropy(out.float(), y).backward()
        opt.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    opt.zero_grad(set_to_none=True)
    return int(peak)


def test_time_model_on_cuda_and_its_memory_matches_max_memory_allocated():
    from trials.timing.step_time import time_model

    spec = get_model("RegNetY-200MF").replace(resolution=64, num_classes=10)
    protocol = TimingProtocol(steps=5, rounds=1, min_warmup=2, max_warmup=4)
    r = time_model(spec, batch_size=16, device="cuda", protocol=protocol, memory=True)
    assert r["seconds_per_batch"] > 0 and len(r["times"]) == 5
    assert r["seconds_per_image"] == pytest.approx(r["seconds_per_batch"] / 16)
    torch.manual_seed(0)
    model = build_model(spec).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,), device="cuda")
    amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    own = _own_peak(model, x, y, amp)
    # the same step on the same device: equal up to cuDNN's choice of workspace
    assert r["memory_bytes"] == pytest.approx(own, rel=0.2)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    assert r["memory_bytes"] > 3 * weights  # weights, gradients, momentum, activations


def test_calibrate_on_cuda_fits_time_and_memory():
    from trials.timing.calibrate import calibrate, hardware_name

    result = calibrate(
        get_model("RegNetY-200MF").with_resolution(64),
        strategies=["w", "dWr"],
        factors=[2, 3],
        device="cuda",
        batch_size=16,
        protocol=TimingProtocol(steps=3, rounds=1, min_warmup=1, max_warmup=3),
        diverse=False,
    )
    profile = result.profile
    assert profile.hardware == hardware_name("cuda") and profile.kind == "ops"
    # the base itself, then its 4 scaled copies
    assert len(result.rows) == 5 and all(r["memory_bytes"] > 0 for r in result.rows)
    priced = profile.price(get_model("RegNetY-200MF").with_resolution(64))
    assert priced["seconds_per_step"] > 0 and priced["memory_bytes"] > 0
    # memory grows with the model: the largest scaled copy needs the most
    largest = max(result.rows, key=lambda r: r["flops"])
    assert largest["memory_bytes"] == max(r["memory_bytes"] for r in result.rows)


def test_a_study_with_half_a_gpu_per_trial(tmp_path):
    import ray

    from tests.test_study_ray import tiny_config, tiny_specs
    from trials.study import Candidate, run_study

    if ray.is_initialized() and not ray.cluster_resources().get("GPU"):
        pytest.skip("a CPU-only Ray (the shared test cluster) is up: run tests/gpu on its own")
    specs = tiny_specs(2, seed=5)
    df = run_study(tmp_path, [Candidate(s) for s in specs], tiny_config(epochs=1),
                   cpus_per_trial=1, gpus_per_trial=0.5, progress=False)  # fmt: skip
    # gpus_per_trial > 0 trains on "cuda" (trials/study/trainable.py): a broken CUDA path
    # (AMP, channels-last, the GradScaler) fails the trials; two halves share the one GPU
    assert sorted(df["status"]) == ["done", "done"] and df["error"].between(0, 1).all()
    assert (df["attempts"] == 1).all()
