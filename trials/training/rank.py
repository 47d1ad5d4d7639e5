"""One data-parallel worker (rank) of a run: its share of every global batch, DDP, and the
collective results every rank agrees on (docs/training.md, "Data-parallel training").

How the N workers see the same run as one process would:

- **Batches.** Epoch e's order is the one-process order (a permutation seeded by (seed, e));
  global batch t is its t-th slice of `batch_size` images and rank r trains on the r-th
  `batch_size / N` of it. So step t uses the same images for every N.
- **Mixup.** The mixing weight and the partner permutation are drawn per global batch from
  the same seeded streams as in one process; rank r loads the partners of its own images
  (indices into the global batch) instead of permuting its slice, so every mixed image is
  the one a single process would make. A sample's augmentation (ImageFolder crops) is seeded
  by (seed, epoch, sample index) and so does not depend on the rank that loads it.
- **Gradients.** Each rank's loss is the mean over its slice; DDP averages gradients, which
  is the gradient of the global mean. BatchNorm uses per-worker statistics unless `sync_bn`
  (trials.training.sync_bn), with which the arithmetic equals one process up to float
  reduction order.
- **One result.** EMA updates see identical weights on every rank (DDP broadcasts rank 0's
  BN buffers each step); precise BN runs identically everywhere, then rank 0's buffers are
  broadcast; validation is sharded and its counts all-reduced; losses are all-reduced.
  Rank 0's state is the run's checkpoint: one unsharded state dict, loadable at any N.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import time
import warnings
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from spaces.specs import spec_from_dict
from trials.data.datasets import load_dataset
from trials.data.splits import derive_seed, shuffle_seed
from trials.training.device import peak_memory
from trials.training.recipe import TrainConfig, ema_alpha, lr_at
from trials.training.steps import (
    NAN_CHECK_EVERY,
    check_finite,
    count_wrong,
    mixed_loss,
    param_groups,
    precise_bn,
    restore_state,
    sgd_step,
    update_ema,
)
from trials.training.sync_bn import convert_sync_bn

# A peer that vanished must not hang the others forever; the driver kills them sooner.
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


def free_address() -> tuple[str, int]:
    """This node's address and a free TCP port for the process group's rendezvous."""
    import ray

    host = ray.util.get_node_ip_address()
    with socket.socket() as s:
        s.bind(("", 0))
        return host, s.getsockname()[1]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The one-process shuffle of epoch `epoch` (as TensorSplit.batches draws it)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed(seed, epoch)))


class RankWorker:
    """Rank `rank` of `world`: built by the driver (trials.training.parallel) as a Ray actor."""

    def __init__(self, rank: int, world: int, spec: dict, config: dict, options: dict):
        self.rank, self.world = rank, world
        self.spec, self.config = spec_from_dict(dict(spec)), TrainConfig.from_dict(config)
        self.sync_bn = bool(options.get("sync_bn"))
        self.kill_epoch = options.get("kill_epoch")  # drill: SIGKILL self in this epoch
        # the autograd-aware all_reduce that sync_bn needs has no non-deprecated twin yet
        warnings.filterwarnings("ignore", "torch.distributed.nn.functional", FutureWarning)

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def address(self) -> tuple[str, int]:
        return free_address()

    def setup(self, host: str, port: int) -> int:
        """Join the process group, load the data and build the replica; returns iterations."""
        from spaces.build import build_model

        c = self.config
        cuda = c.device == "cuda"
        dist.init_process_group(
            "nccl" if cuda else "gloo", init_method=f"tcp://{host}:{port}",
            rank=self.rank, world_size=self.world, timeout=COLLECTIVE_TIMEOUT,
        )  # fmt: skip
        torch.set_num_threads(c.resolved_threads())
        self.device = torch.device("cuda", 0) if cuda else torch.device("cpu")  # Ray's GPU
        if cuda:
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
        data = load_dataset(
            c.dataset, int(self.spec.resolution), train_size=c.train_size,
            val_size=c.val_size, seed=c.seed,
        )  # fmt: skip
        self.train_split, self.val_split = data.train, data.val
        for split in (self.train_split, self.val_split):
            split.to(self.device)
            if hasattr(split, "num_workers"):
                split.num_workers = c.num_workers
        torch.manual_seed(derive_seed(c.seed, 0, 3))  # the initial weights, as in one process
        model = build_model(self.spec)
        if self.sync_bn:
            model = convert_sync_bn(model, self.device.type)
        model = model.to(self.device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        self.net = model
        # DDP's default syncs rank 0's buffers (BN statistics) into every replica each step
        self.ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[0] if cuda else None
        )
        self.ema = copy.deepcopy(model).requires_grad_(False) if c.ema else None
        self.optimizer = torch.optim.SGD(
            param_groups(model, c.resolved_weight_decay(self.spec)),
            lr=lr_at(c, 0.0), momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0,
        )  # fmt: skip
        self.amp = None
        if cuda:
            self.amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.iters = len(self.train_split) // c.batch_size
        return self.iters

    def restore(self, ckpt: dict) -> int:
        return restore_state(self.net, self.ema, self.optimizer, self.scaler, ckpt)

    def state(self) -> dict:
        """The unsharded state of the run (rank 0's replica; all replicas are equal)."""
        cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}  # noqa: E731
        return {
            "model": cpu(self.net.state_dict()),
            "ema": cpu(self.ema.state_dict()) if self.ema is not None else None,
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }

    def _shares(self, epoch: int):
        """Per step: (own indices, partner indices or None, mixup weight)."""
        c, b = self.config, self.config.batch_size // self.world
        order = epoch_order(len(self.train_split), c.seed, epoch)
        mix_rng = np.random.default_rng(derive_seed(c.seed, epoch, 7))
        perm_gen = torch.Generator().manual_seed(derive_seed(c.seed, epoch, 13))
        mine = slice(self.rank * b, (self.rank + 1) * b)
        for t in range(self.iters):
            batch = order[t * c.batch_size : (t + 1) * c.batch_size]
            if c.mixup > 0:
                lam = float(mix_rng.beta(c.mixup, c.mixup))
                perm = torch.randperm(c.batch_size, generator=perm_gen)
                yield batch[mine], batch[perm[mine]], lam
            else:
                yield batch[mine], None, 1.0

    def train_epoch(self, epoch: int) -> tuple[float, int, float, list[float], int]:
        """(global summed loss, global images, seconds, per-step global mean losses, peak
        bytes of this rank)."""
        c, dev = self.config, self.device
        if self.kill_epoch is not None and epoch + 1 == int(self.kill_epoch):
            os.kill(os.getpid(), signal.SIGKILL)  # the kill drill: a worker dies mid-run
        torch.manual_seed(derive_seed(c.seed, epoch, 17))
        shares = list(self._shares(epoch))
        own = self.train_split.batches_of([s[0] for s in shares], epoch=epoch)
        partners = self.train_split.batches_of(
            [s[1] for s in shares if s[1] is not None], epoch=epoch
        )
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            torch.cuda.synchronize(dev)
        self.ddp.train()
        losses = []
        tic = time.perf_counter()
        for i, ((x, y), (_, _, lam)) in enumerate(zip(own, shares, strict=True)):
            t = epoch + i / self.iters
            lr = lr_at(c, t)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss = self._step(x, y, next(partners) if c.mixup > 0 else None, lam)
            if self.ema is not None:
                update_ema(self.ema, self.net, ema_alpha(c, self.iters * c.epochs, t))
            losses.append(loss.detach())
            if (i + 1) % NAN_CHECK_EVERY == 0:
                check_finite(losses[-1], epoch, i, lr)
        step_losses = torch.stack(losses).float() if losses else torch.zeros(0, device=dev)
        dist.all_reduce(step_losses)
        step_losses /= self.world
        check_finite(step_losses.sum(), epoch, self.iters - 1, lr_at(c, epoch + 1))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - tic
        per_step = step_losses.cpu().tolist()
        seen = self.iters * c.batch_size
        return float(sum(per_step)) * c.batch_size, seen, seconds, per_step, peak_memory(dev)

    def _step(self, x, y, partner, lam: float) -> torch.Tensor:
        c, dev = self.config, self.device
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        y2 = y
        if partner is not None:
            xp, y2 = (t.to(dev, non_blocking=True) for t in partner)
            x = x.mul(lam).add_(xp, alpha=1.0 - lam)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=self.amp, enabled=self.amp is not None):
            logits = self.ddp(x)
        loss = mixed_loss(logits.float(), y, y2, lam, c.label_smoothing)
        sgd_step(self.optimizer, self.scaler, loss)
        return loss

    def validate(self, epoch: int) -> tuple[float, float | None]:
        """Errors of the raw and averaged model: identical precise BN on every rank (rank 0's
        buffers broadcast), then each rank counts its shard of the validation set."""
        c = self.config
        n, b = len(self.val_split), max(1, c.batch_size // self.world)
        lo, hi = self.rank * n // self.world, (self.rank + 1) * n // self.world
        shard = [list(range(s, min(s + b, hi))) for s in range(lo, hi, b)]
        errors = []
        for m in [self.net] + ([self.ema] if self.ema is not None else []):
            precise_bn(
                m, self.train_split, c.batch_size, c.precise_bn, self.device,
                seed=c.seed, epoch=epoch, amp_dtype=self.amp,
            )  # fmt: skip
            for buf in m.buffers():
                dist.broadcast(buf, 0)
            wrong, total = count_wrong(m, self.val_split.batches_of(shard), self.device, self.amp)
            counts = torch.stack([wrong.to(torch.float64), wrong.new_tensor(total).double()])
            dist.all_reduce(counts)
            errors.append(float(counts[0] / counts[1].clamp(min=1)))
        return errors[0], errors[1] if len(errors) > 1 else None

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
