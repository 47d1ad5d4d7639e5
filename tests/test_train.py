"""Training under the §8 recipe: learns, is deterministic, resumes exactly, fails clearly."""

import json

import pytest
import torch

from spaces.complexity import complexity
from spaces.registry import get_model
from trials.data.datasets import load_dataset
from trials.training.recipe import TrainConfig, ema_alpha, lr_at
from trials.training.train import (
    CHECKPOINT,
    CheckpointMismatch,
    OutputError,
    TrainingDiverged,
    param_groups,
    train,
)

TIMING_KEYS = ("epoch_time", "eval_time", "images_per_s", "peak_mem")


def _math(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def test_small_regnet_learns_beyond_chance_in_one_epoch():
    config = TrainConfig(
        epochs=1, batch_size=64, train_size=2000, val_size=500, resolution=32, threads=1
    )
    seen = []
    result = train(get_model("RegNetX-200MF"), config, on_epoch=seen.append)
    assert result["error"] < 0.6  # chance is 0.9 for ten balanced classes
    assert len(seen) == 1 and seen[0]["epoch"] == 1
    assert seen[0]["train_loss"] < 2.2  # ln 10 = 2.30 is the loss of a uniform guess
    r = seen[0]
    assert r["epoch_time"] > 0 and r["images_per_s"] > 0 and r["peak_mem"] > 0
    # complexity is counted as trained: 10 classes, 1 input channel, 32 px
    trained = get_model("RegNetX-200MF").replace(num_classes=10, in_channels=1, resolution=32)
    assert result["params"] == complexity(trained).params
    assert result["flops"] == complexity(trained).flops
    assert (result["device"], result["seed"]) == ("cpu", 0)


def test_same_seed_same_losses_other_seed_differs(tiny_spec, fast_config):
    a = train(tiny_spec, fast_config)
    b = train(tiny_spec, fast_config)
    c = train(tiny_spec, fast_config.replace(seed=4))
    assert _math(a["epochs"]) == _math(b["epochs"])
    assert [r["train_loss"] for r in a["epochs"]] != [r["train_loss"] for r in c["epochs"]]
    assert a["error"] == min(r["error_ema"] for r in a["epochs"])  # best averaged weights


def test_resume_equals_uninterrupted(tmp_path, tiny_spec, fast_config):
    whole = train(tiny_spec, fast_config, out_dir=tmp_path / "whole")

    class Interrupt(Exception):
        pass

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(tiny_spec, fast_config, out_dir=tmp_path / "cut", on_epoch=stop_after_first)
    ckpt = torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 1
    resumed_epochs = []
    resumed = train(
        tiny_spec, fast_config, out_dir=tmp_path / "cut", on_epoch=resumed_epochs.append
    )
    assert [r["epoch"] for r in resumed_epochs] == [2]  # epoch 1 was not trained again
    assert _math(resumed["epochs"]) == _math(whole["epochs"])
    a = torch.load(tmp_path / "whole" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=True)
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    saved = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert saved["error"] == resumed["error"]
    # a finished run returns its result without training again
    again = train(tiny_spec, fast_config, out_dir=tmp_path / "cut", on_epoch=resumed_epochs.append)
    assert again["epochs"] == resumed["epochs"] and len(resumed_epochs) == 1


def test_other_run_in_the_same_directory_is_refused_untouched(tmp_path, tiny_spec, fast_config):
    config = fast_config.replace(epochs=1)
    train(tiny_spec, config, out_dir=tmp_path)
    before = (tmp_path / CHECKPOINT).read_bytes()
    with pytest.raises(CheckpointMismatch, match="different spec or training config"):
        train(tiny_spec, config.replace(seed=9), out_dir=tmp_path)
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    # runtime-only settings do not make it a different run
    train(tiny_spec, config.replace(threads=2), out_dir=tmp_path)


def test_unwritable_output_fails_before_training(tmp_path, tiny_spec, fast_config):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(OutputError, match="cannot write"):
        train(tiny_spec, fast_config, out_dir=blocker / "sub")
    assert blocker.read_text() == "keep me"


def test_absurd_learning_rate_raises_training_diverged(tiny_spec, fast_config):
    config = fast_config.replace(base_lr=1e30, warmup_epochs=0, epochs=1)
    with pytest.raises(TrainingDiverged, match="diverged"):
        train(tiny_spec, config)


def test_trains_on_an_image_folder(image_tree, tiny_spec):
    config = TrainConfig(dataset=str(image_tree), epochs=1, batch_size=4, threads=1)
    result = train(tiny_spec, config)
    assert result["epochs"][0]["images_per_s"] > 0
    assert 0 <= result["error"] <= 1
    assert result["params"] == complexity(tiny_spec.replace(num_classes=3)).params


def test_preloaded_data_is_used_as_given(tiny_spec, fast_config):
    data = load_dataset("fashion-mnist", 16, train_size=64, val_size=32, seed=3)
    result = train(tiny_spec, fast_config.replace(epochs=1), data=data)
    assert result["epochs"][0]["images_per_s"] > 0


def test_learning_rate_warms_up_then_decays_exponentially():
    c = TrainConfig(epochs=10, batch_size=256, base_lr=2.0, lr_beta=0.02, warmup_epochs=1)
    peak = 2.0 * 256 / 1024
    assert c.lr() == pytest.approx(peak)
    assert lr_at(c, 0.0) == pytest.approx(0.1 * peak)  # warm-up starts at 10 %
    assert lr_at(c, 0.5) == pytest.approx(peak * 0.02**0.05 * 0.55)
    assert lr_at(c, 5.0) == pytest.approx(peak * 0.02**0.5)
    assert lr_at(c, 10.0) == pytest.approx(peak * 0.02)
    assert TrainConfig(epochs=100).resolved_warmup() == 5.0  # the paper's 5 epochs
    assert TrainConfig(epochs=2).resolved_warmup() == pytest.approx(0.1)
    assert ema_alpha(c, 1000, 0.5) == 1.0  # EMA follows the weights during warm-up
    assert ema_alpha(c, 1000, 2.0) == pytest.approx(1 / 80)


def test_no_weight_decay_on_batchnorm_or_bias(tiny_spec):
    from spaces.build import build_model

    model = build_model(tiny_spec)
    decay, no_decay = param_groups(model, 2e-5)
    bn_and_bias = {id(p) for n, p in model.named_parameters() if ".bn." in n or n.endswith("bias")}
    assert {id(p) for p in no_decay["params"]} == bn_and_bias
    assert decay["weight_decay"] == 2e-5 and no_decay["weight_decay"] == 0.0
    assert TrainConfig().resolved_weight_decay(tiny_spec) == 2e-5
    assert TrainConfig().resolved_weight_decay(get_model("EfficientNet-B0")) == 1e-5


def test_config_round_trips_and_rejects_bad_values():
    from trials.training.recipe import ConfigError

    c = TrainConfig(epochs=3, train_size=100, device="cpu")
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="train config: unknown field"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="resolution"):
        TrainConfig(resolution=4)
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="tpu")
