"""The training recipe (the paper's §6.1; docs/training.md) as one frozen config, plus its schedule arithmetic.

Every field has the paper's value where the paper gives one; the few that must differ for
short CPU runs (batch size, warm-up length) are derived from the schedule length so that a
1-epoch Fashion-MNIST run and a 100-epoch ImageNet run follow the same rule. See
docs/training.md for the table of defaults and why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.validate import dataclass_from_mapping
from trials import available_cpus  # noqa: F401  (re-exported: trials.training.recipe.available_cpus)

# Reference batch at which `base_lr` is given; the learning rate scales linearly from it.
REFERENCE_BATCH = 1024
# Warm-up starts at this fraction of the learning rate and rises linearly to 1 (as pycls).
WARMUP_START = 0.1
# The paper warms up 5 of 100 epochs; shorter schedules keep the same 5 % (capped at 5 epochs).
WARMUP_FRACTION = 0.05
DEVICES = ("cpu", "cuda")
MODES = ("train", "infer")  # what a timing or a runtime profile measures
CLOCKS = ("wall", "cpu")  # how timing counts seconds


class ConfigError(FastscaleError):
    """A training configuration value outside its allowed range."""


# Upper bounds that keep a typo (an extra zero or ten) from starting hours or terabytes of work.
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536
MAX_THREADS = 1024
MAX_WORKERS = 256
MAX_RESOLUTION = 16_384
MAX_SEED = 2**32 - 1  # numpy's and torch's generators take 0 .. 2**32 - 1


def memory_needed(spec, batch_size: int, train: bool) -> int:
    """A lower bound on the bytes one step of `spec` holds (fp32): every counted activation
    of the batch (kept for the backward pass when training, with its gradient) plus weights,
    gradients, momentum and the averaged copy."""

    cx = complexity(spec)
    inputs = spec.in_channels * spec.resolution**2
    acts = (cx.acts + inputs) * batch_size * (2 if train else 1)
    weights = cx.params * (4 if train else 1)
    return 4 * (acts + weights)


def check_memory(spec, batch_size: int, train: bool, device: str = "cpu") -> None:
    """Refuse, in one line, a step that cannot fit this machine's memory (before allocating)."""
    import os

    need = memory_needed(spec, batch_size, train)
    if device == "cuda":
        import torch

        have = torch.cuda.mem_get_info()[1] if torch.cuda.is_available() else need
        where = "GPU memory"
    else:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        where = "memory"
    if need > have:
        raise ConfigError(
            f"{'training' if train else 'inference'} at batch {batch_size} and {spec.resolution} "
            f"px needs at least {need / 2**30:,.1f} GiB; this machine has {have / 2**30:,.1f} GiB "
            f"of {where}: lower the batch size or the resolution"
        )


@dataclass(frozen=True)
class TrainConfig:
    """One training run's recipe. `None` fields are derived (see the `resolved_*` methods).

    dataset: "fashion-mnist" or the path of an ImageFolder tree (train/ and val/ inside).
    base_lr: learning rate at batch 1024; the run uses base_lr * batch_size / 1024.
    warmup_epochs: linear warm-up length (fractional allowed); None = 5 % of epochs, max 5.
    weight_decay: None = 2e-5 for RegNets, 1e-5 for EfficientNets; never on BN/bias.
    ema: keep an exponential moving average of the weights and report its error.
    ema_horizon: the average spans about this fraction of all training iterations
      (pycls' EMA_ALPHA 1e-5 at batch 1024 for 100 epochs spans ~8 %).
    precise_bn: before each evaluation, recompute BatchNorm statistics of the raw and the
      averaged model over this many training images (pycls' precise BN); 0 turns it off.
    train_size / val_size: seeded stratified subsets (None = all 60k / the 10k test set).
    resolution: None = the spec's own resolution.
    threads: torch CPU threads; None = every core this process may run on.
    """

    dataset: str = "fashion-mnist"
    epochs: float = 1
    batch_size: int = 128
    base_lr: float = 2.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None
    label_smoothing: float = 0.1
    mixup: float = 0.2
    warmup_epochs: float | None = None
    lr_beta: float = 0.02
    ema: bool = True
    ema_horizon: float = 0.08
    precise_bn: int = 8192
    train_size: int | None = None
    val_size: int | None = None
    resolution: int | None = None
    device: str = "cpu"
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None

    def __post_init__(self):
        _need(
            int(self.epochs) == self.epochs and 1 <= self.epochs <= MAX_EPOCHS,
            f"epochs must be an integer in [1, {MAX_EPOCHS}]",
        )
        object.__setattr__(self, "epochs", int(self.epochs))
        _need(1 <= self.batch_size <= MAX_BATCH, f"batch_size must be in [1, {MAX_BATCH}]")
        _need(0 <= self.seed <= MAX_SEED, f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        _need(self.base_lr > 0 and math.isfinite(self.base_lr), "base_lr must be > 0")
        _need(0 <= self.momentum < 1, "momentum must be in [0, 1)")
        _need(self.weight_decay is None or self.weight_decay >= 0, "weight_decay must be >= 0")
        _need(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        _need(self.mixup >= 0, "mixup (the Beta alpha) must be >= 0; 0 turns it off")
        _need(
            self.warmup_epochs is None or 0 <= self.warmup_epochs <= self.epochs,
            "warmup_epochs must be in [0, epochs]",
        )
        _need(0 < self.lr_beta <= 1, "lr_beta must be in (0, 1]")
        _need(0 < self.ema_horizon <= 1, "ema_horizon must be in (0, 1]")
        _need(self.precise_bn >= 0, "precise_bn must be >= 0 (images; 0 turns it off)")
        _need(self.val_size is None or self.val_size >= 1, "val_size must be >= 1")
        # a training batch is the whole set when it is smaller than one: BatchNorm needs two
        _need(
            self.train_size is None or self.train_size >= 2,
            f"train_size must be >= 2 (BatchNorm needs two images per batch), "
            f"got {self.train_size}",
        )
        _need(self.batch_size >= 2, "batch_size must be >= 2 (BatchNorm needs two images)")
        _need(
            self.resolution is None or 8 <= int(self.resolution) <= MAX_RESOLUTION,
            f"resolution must be an integer in [8, {MAX_RESOLUTION}], got {self.resolution}",
        )
        _need(
            self.device in DEVICES,
            f"device must be one of {', '.join(DEVICES)}, got {self.device!r}",
        )
        _need(0 <= self.num_workers <= MAX_WORKERS, f"num_workers must be in [0, {MAX_WORKERS}]")
        _need(
            self.threads is None or 1 <= self.threads <= MAX_THREADS,
            f"threads must be in [1, {MAX_THREADS}]",
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of to_dict; unknown keys are an error so a typo never trains silently."""

        return dataclass_from_mapping(cls, data, "train config", ConfigError)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    # -- derived values -------------------------------------------------------------------
    def lr(self) -> float:
        """Peak learning rate at this batch size (linear scaling rule)."""
        return self.base_lr * self.batch_size / REFERENCE_BATCH

    def resolved_warmup(self) -> float:
        if self.warmup_epochs is not None:
            return float(self.warmup_epochs)
        return min(5.0, WARMUP_FRACTION * self.epochs)

    def resolved_weight_decay(self, spec) -> float:
        """The configured decay, or the paper's recipe value by block type (docs/training.md) (scaled specs keep theirs)."""
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return spec.kind.weight_decay  # the block table's weight-decay class

    def resolved_threads(self) -> int:
        if self.threads is not None:
            return int(self.threads)
        return available_cpus()


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def lr_at(config: TrainConfig, t: float) -> float:
    """Learning rate at training progress t (in epochs, fractional): λ·β^(t/T), warmed up.

    Warm-up multiplies by a factor rising linearly from WARMUP_START to 1 over the warm-up
    epochs, evaluated per iteration.
    """
    lr = config.lr() * config.lr_beta ** (t / config.epochs)
    warmup = config.resolved_warmup()
    if warmup > 0 and t < warmup:
        a = t / warmup
        lr *= WARMUP_START * (1 - a) + a
    return lr


def ema_alpha(config: TrainConfig, total_iters: int, t: float) -> float:
    """Weight of the new weights in one EMA update; 1 (plain copy) during warm-up."""
    if t < config.resolved_warmup():
        return 1.0
    return min(1.0, 1.0 / max(1.0, config.ema_horizon * total_iters))
