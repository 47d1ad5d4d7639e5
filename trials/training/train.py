"""One training run under the fixed recipe (the paper's §6.1; docs/training.md), checkpointed every epoch.

The reported `error` of a run is the BEST validation top-1 error (a fraction) of the
averaged-weights (EMA) model over all epochs, as pycls reports its best top-1; with `ema`
off it is the best of the raw model. Every epoch's record also carries both errors.

Determinism: model initialisation, shuffling, mixup and any dropout draw from seeds derived
from (seed, epoch), reseeded at the start of every epoch, so a run resumed from its
checkpoint after epoch k continues exactly as an uninterrupted run would (on CPU, at a
fixed thread count). The output directory's lock, and how the checkpoint and result.json
stay consistent under any kill, are in trials.training.run_dir.
"""

from __future__ import annotations

import copy
import os
import statistics
import time

import numpy as np
import torch

from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.safe_write import OutputError
from trials.data.catalogue import dataset_info, trained_spec
from trials.data.datasets import load_dataset
from trials.data.splits import Datasets, derive_seed
from trials.training.device import check_device, peak_memory, torch_threads
from trials.training.parallel import (
    DistributedRun,
    ParallelConfig,
    check_fits_here,
    check_parallel,
    kill_drill,
)
from trials.training.recipe import TrainConfig, check_memory, ema_alpha, lr_at
from trials.training.run_dir import CHECKPOINT, RESULT, RunDir
from trials.training.steps import (
    NAN_CHECK_EVERY,
    TrainingDiverged,
    check_finite,
    evaluate,
    mixed_loss,
    param_groups,
    precise_bn,
    restore_state,
    sgd_step,
    update_ema,
)

__all__ = [
    "CHECKPOINT",
    "RESULT",
    "OutputError",
    "TrainingDiverged",
    "evaluate",
    "param_groups",
    "precise_bn",
    "train",
    "update_ema",
]
# Config keys that do not change the arithmetic of a run: a resume may differ in them.
RUNTIME_KEYS = ("device", "threads", "num_workers")


class CheckpointMismatch(FastscaleError):
    """The output directory holds a checkpoint of a different spec or recipe."""


def _run_key(spec, config: TrainConfig) -> dict:
    cfg = {k: v for k, v in config.to_dict().items() if k not in RUNTIME_KEYS}
    return {"spec": spec.to_dict(), "config": cfg}


def load_checkpoint(out: RunDir, key: dict, device: torch.device) -> dict | None:
    path = out.path / CHECKPOINT
    try:
        ckpt = out.load_checkpoint(device)
    except Exception as exc:  # a truncated or foreign file: refuse, never overwrite it
        raise CheckpointMismatch(
            f"cannot read checkpoint {path} ({type(exc).__name__}); move it away or use another --out"
        ) from None
    if ckpt is None:
        return None
    if ckpt.get("key") != key:
        raise CheckpointMismatch(
            f"{path} belongs to a different spec or training config; use another --out "
            "(the existing checkpoint is left untouched)"
        )
    return ckpt


def summarize(
    records: list[dict], spec, config: TrainConfig, par: ParallelConfig | None = None
) -> dict:
    """The result of a run from its epoch records (see the module doc for `error`)."""
    cx = complexity(spec).as_dict()
    best = min(records, key=lambda r: (r["error"], r["epoch"])) if records else None
    return {
        "epochs": records,
        "error": best["error"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_error": records[-1]["error"] if records else None,
        "epoch_time": statistics.median(r["epoch_time"] for r in records) if records else None,
        "images_per_s": statistics.median(r["images_per_s"] for r in records) if records else None,
        **cx,
        "resolution": int(spec.resolution),
        "device": config.device,
        "seed": config.seed,
        "workers": par.workers if par else 1,
        "worker_batch": config.batch_size // (par.workers if par else 1),
        "sync_bn": bool(par and par.sync_bn),
    }


def train(
    spec,
    config: TrainConfig,
    out_dir=None,
    on_epoch=None,
    *,
    data: Datasets | None = None,
    on_step=None,
    on_resume=None,
    parallel: ParallelConfig | None = None,
    on_losses=None,
) -> dict:
    """Train `spec` under `config`; checkpoint to and resume from `out_dir`; see module doc.

    `data` lets a caller reuse already loaded splits (they must match config's dataset,
    resolution and sizes). `on_step(epoch, images_done, images_total)` is called after every
    training step (epoch 0-based; progress displays), and once with images_done = -1 when
    the epoch's evaluation starts. `on_resume(epochs_done)` is called once when the run
    continues from a checkpoint in `out_dir` (epochs_done of them already trained). Returns {"epochs", "error", "epoch_time", "params",
    "flops", "acts", "device", "seed", ...}; raises TrainingDiverged on a non-finite loss and
    OutputError when out_dir is locked by another run or cannot be written.

    `parallel` (trials.training.parallel.ParallelConfig) with workers > 1 trains on that
    many data-parallel workers; `config.batch_size` stays the global batch. The result then
    says `workers` and `worker_batch`. `on_losses(epoch, losses)` receives every epoch's
    per-step (global mean) training losses.
    """
    par = parallel or ParallelConfig()
    check_parallel(config, par)
    device = check_device(config.device) if par.workers == 1 else torch.device(config.device)
    resolution = int(config.resolution or spec.resolution)
    spec = trained_spec(spec, config.dataset, resolution)
    worker_batch = config.batch_size // par.workers
    check_memory(spec, worker_batch, train=True, device=config.device)  # before loading
    if par.workers > 1:
        check_fits_here(config, par)
        dataset_info(config.dataset, check=True)  # a missing dataset: one line, before Ray
    out = RunDir.open(out_dir) if out_dir is not None else None  # locked until the end
    hooks = (on_epoch, on_step, on_losses, on_resume)
    try:
        return _train(spec, config, out, hooks, data, device, resolution, par)
    finally:
        if out is not None:
            out.close()


def _train(spec, config: TrainConfig, out: RunDir | None, hooks, data, device, resolution, par):
    on_epoch, on_step, on_losses, on_resume = hooks
    with torch_threads(config.resolved_threads()):
        if par.workers > 1:
            data = None  # every worker loads its own copy (no shared filesystem needed)
        elif data is None:
            data = load_dataset(
                config.dataset,
                resolution,
                train_size=config.train_size,
                val_size=config.val_size,
                seed=config.seed,
            )
        if data is not None:
            spec = spec.replace(num_classes=data.num_classes, in_channels=data.in_channels)
        key = _run_key(spec, config)
        ckpt = load_checkpoint(out, key, torch.device("cpu")) if out else None
        records = list(ckpt["records"]) if ckpt else []
        if ckpt and on_resume is not None:
            on_resume(int(ckpt["epoch"]))
        if ckpt:  # a kill may have come between the checkpoint and result.json
            out.catch_up(records, summarize(records, spec, config, par), on_epoch)
        if ckpt and ckpt["epoch"] >= config.epochs:
            return summarize(records, spec, config, par)
        run = _start(spec, config, data, device, par)
        try:
            _epochs(run, ckpt, spec, config, out, hooks, key, records, par)
        finally:
            if par.workers > 1:
                run.close()
        return summarize(records, spec, config, par)


def _start(spec, config: TrainConfig, data, device, par: ParallelConfig):
    """The one-process run, or the driver's handle on the data-parallel workers."""
    from spaces.build import build_model

    if par.workers > 1:
        return DistributedRun(spec, config, par, kill_drill(dict(os.environ)))
    torch.manual_seed(derive_seed(config.seed, 0, 3))  # the initial weights
    return _Run(spec, config, data, device, build_model(spec))


def _epochs(run, ckpt, spec, config, out, hooks, key, records, par) -> None:
    """Train the epochs the checkpoint lacks; checkpoint, result.json, then report each."""
    on_epoch, on_step, on_losses, _ = hooks
    start = run.restore(ckpt) if ckpt else 0
    for epoch in range(start, config.epochs):
        loss, seen, epoch_time = run.train_epoch(epoch, on_step)
        if on_losses is not None:
            on_losses(epoch, list(run.step_losses))
        if on_step is not None:
            on_step(epoch, -1, seen)
        tic = time.perf_counter()
        error_raw, error_ema = run.validate(epoch)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss / max(1, seen),
            "error": error_ema if error_ema is not None else error_raw,
            "error_raw": error_raw,
            "error_ema": error_ema,
            "lr": lr_at(config, epoch + 1),
            "epoch_time": epoch_time,
            "eval_time": time.perf_counter() - tic,
            "images_per_s": seen / epoch_time if epoch_time > 0 else float("nan"),
            "peak_mem": run.peak_memory(),
            "workers": par.workers,
        }
        if par.workers > 1:
            record["worker_nodes"] = list(run.nodes)  # Ray node ids, rank order
        records.append(record)
        if out is not None:  # the truth first, then what is derived from it
            out.save_checkpoint(run.state(key, epoch + 1, records))
            out.save_result(summarize(records, spec, config, par))
        if on_epoch is not None:  # sees (and may copy) a consistent directory
            on_epoch(dict(record))


class _Run:
    """The model, its average, the optimizer and the data of one run, one epoch at a time."""

    def __init__(self, spec, config: TrainConfig, data: Datasets, device, model):
        self.config, self.device, self.cuda = config, device, device.type == "cuda"
        self.model = model.to(device)
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.model).requires_grad_(False) if config.ema else None
        self.optimizer = torch.optim.SGD(
            param_groups(self.model, config.resolved_weight_decay(spec)),
            lr=lr_at(config, 0.0),
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
        )
        self.amp = None
        if self.cuda:
            self.amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.train_split, self.val_split = data.train, data.val
        for split in (self.train_split, self.val_split):
            split.to(device)
            if hasattr(split, "num_workers"):
                split.num_workers = config.num_workers
        self.iters = self.train_split.num_batches(config.batch_size, drop_last=True)

    def peak_memory(self) -> int:
        return peak_memory(self.device)

    def restore(self, ckpt: dict) -> int:
        return restore_state(self.model, self.ema, self.optimizer, self.scaler, ckpt)

    def state(self, key: dict, epoch: int, records: list[dict]) -> dict:
        return {
            "format": 1,
            "key": key,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "records": records,
        }

    def train_epoch(self, epoch: int, on_step=None) -> tuple[float, int, float]:
        """(summed loss, images, seconds) of one pass; randomness reseeded from (seed, epoch)."""
        c, dev, model = self.config, self.device, self.model
        torch.manual_seed(derive_seed(c.seed, epoch, 17))
        mix_rng = np.random.default_rng(derive_seed(c.seed, epoch, 7))
        perm_gen = torch.Generator().manual_seed(derive_seed(c.seed, epoch, 13))
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(dev)
            torch.cuda.synchronize(dev)
        model.train()
        loss_sum, seen, losses = torch.zeros((), device=dev), 0, []
        total_iters = self.iters * c.epochs
        tic = time.perf_counter()
        batches = self.train_split.batches(
            c.batch_size, shuffle=True, seed=c.seed, epoch=epoch, drop_last=True
        )
        for i, (x, y) in enumerate(batches):
            t = epoch + i / self.iters
            lr = lr_at(c, t)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if self.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            lam, y2 = 1.0, y
            if c.mixup > 0 and len(y) > 1:
                lam = float(mix_rng.beta(c.mixup, c.mixup))
                perm = torch.randperm(len(y), generator=perm_gen).to(dev)
                x = x.mul(lam).add_(x[perm], alpha=1.0 - lam)
                y2 = y[perm]
            with torch.autocast(dev.type, dtype=self.amp, enabled=self.amp is not None):
                logits = model(x)
            loss = mixed_loss(logits.float(), y, y2, lam, c.label_smoothing)
            sgd_step(self.optimizer, self.scaler, loss)
            if self.ema is not None:
                update_ema(self.ema, model, ema_alpha(c, total_iters, t))
            loss_sum += loss.detach() * len(y)
            losses.append(loss.detach())
            seen += len(y)
            if (i + 1) % NAN_CHECK_EVERY == 0:
                check_finite(loss_sum, epoch, i, lr)
            if on_step is not None:
                on_step(epoch, seen, self.iters * c.batch_size)
        check_finite(loss_sum, epoch, self.iters - 1, lr_at(c, epoch + 1))
        self.step_losses = torch.stack(losses).float().cpu().tolist() if losses else []
        if self.cuda:
            torch.cuda.synchronize(dev)
        return float(loss_sum.item()), seen, time.perf_counter() - tic

    def validate(self, epoch: int) -> tuple[float, float | None]:
        """Top-1 errors of the raw and the averaged model, after precise BN for both."""
        c = self.config
        models = [self.model] + ([self.ema] if self.ema is not None else [])
        errors = []
        for m in models:
            precise_bn(
                m, self.train_split, c.batch_size, c.precise_bn, self.device,
                seed=c.seed, epoch=epoch, amp_dtype=self.amp,
            )  # fmt: skip
            errors.append(evaluate(m, self.val_split, c.batch_size, self.device, self.amp))
        return errors[0], errors[1] if len(errors) > 1 else None
