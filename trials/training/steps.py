"""The pieces of a training step shared by the one-process loop (trials.training.train) and
the data-parallel workers (trials.training.rank): parameter groups, the weight average,
precise BN, evaluation and the finite-loss check (the recipe: docs/training.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from spaces.errors import FastscaleError

NAN_CHECK_EVERY = 10  # iterations between finite-loss checks (each one syncs the GPU)


class TrainingDiverged(FastscaleError):
    """The training loss became NaN or infinite."""


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only; none on BN parameters and biases (ndim 1)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, alpha: float) -> None:
    """ema ← ema + alpha·(model − ema) for parameters; BN buffers are copied."""
    ema_p = [p for p in ema.parameters()]
    model_p = [p.detach() for p in model.parameters()]
    if alpha >= 1.0:
        torch._foreach_copy_(ema_p, model_p)
    else:
        torch._foreach_lerp_(ema_p, model_p, alpha)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


@torch.no_grad()
def evaluate(model, split, batch_size: int, device: torch.device, amp_dtype=None) -> float:
    """Top-1 error (fraction) of a model on a split, in eval mode."""
    wrong, total = count_wrong(model, split.batches(batch_size), device, amp_dtype)
    return float(wrong.item()) / max(1, total)


@torch.no_grad()
def count_wrong(model, batches, device: torch.device, amp_dtype=None) -> tuple[torch.Tensor, int]:
    """(misclassified count as a tensor, images) of a model over batches, in eval mode."""
    was_training = model.training
    model.eval()
    wrong = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    channels_last = device.type == "cuda"
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        wrong += (out.argmax(1) != y).sum()
        total += len(y)
    model.train(was_training)
    return wrong, total


@torch.no_grad()
def precise_bn(
    model, split, batch_size: int, images: int, device, *, seed: int, epoch: int, amp_dtype=None
):
    """Recompute BN running statistics as a plain average over `images` training images.

    Short runs move the weights faster than BN's running averages follow, which makes the
    eval-mode error meaningless; pycls' precise BN fixes that at a cost of a few forwards.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or images <= 0:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
    was_training = model.training
    model.train()
    seen = 0
    channels_last = device.type == "cuda"
    for x, _ in split.batches(batch_size, shuffle=True, seed=seed, epoch=epoch + 1_000_003):
        if seen >= images:
            break
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
        seen += len(x)
    for bn, m in zip(bns, momenta, strict=True):
        bn.momentum = m
    model.train(was_training)


def check_finite(loss_sum: torch.Tensor, epoch: int, i: int, lr: float) -> None:
    value = float(loss_sum.item())
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training diverged: loss is {value} by epoch {epoch + 1} iteration {i + 1} "
            f"(lr {lr:.3g}); lower base_lr or lengthen the warm-up"
        )


def mixed_loss(logits, y, y2, lam: float, smoothing: float) -> torch.Tensor:
    """Cross-entropy of a mixup batch: lam of the own labels, 1 - lam of the partners'."""
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    if lam < 1.0:
        loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, y2, label_smoothing=smoothing)
    return loss


def sgd_step(optimizer, scaler, loss: torch.Tensor) -> None:
    """One optimizer step on `loss` (gradients scaled for fp16 AMP, a no-op scaler otherwise)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def restore_state(model, ema, optimizer, scaler, ckpt: dict) -> int:
    """Load a checkpoint's weights, averaged weights, optimizer and AMP scaler into a run;
    return the epochs it holds (one format for one process and for data-parallel runs)."""
    model.load_state_dict(ckpt["model"])
    if ema is not None:
        ema.load_state_dict(ckpt["ema"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    return int(ckpt["epoch"])
