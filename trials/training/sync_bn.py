"""BatchNorm whose batch statistics span every data-parallel worker (`--sync-bn`).

torch.nn.SyncBatchNorm refuses CPU tensors, and the exactness test (tests/test_dataparallel.py)
runs on CPU with gloo, so CPU runs use `GlobalBatchNorm2d` below; CUDA runs use
torch.nn.SyncBatchNorm. Both normalise a worker's slice of the global batch with the mean
and (biased) variance of the whole global batch, which is what one process training on the
whole batch computes; the running statistics are updated with the unbiased variance, as
torch does. Statistics are reduced in two passes (the mean, then the squared deviations
from it) so that they carry only float reduction error, not the cancellation of E[x²]−E[x]².
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce  # autograd-aware


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d with training statistics all-reduced (autograd-aware) over the group."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        count = x.new_tensor([float(x.numel() // x.shape[1])])
        sums = all_reduce(torch.cat([x.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x - mean.view(1, -1, 1, 1)
        var = all_reduce(centred.square().sum(dims)) / n
        self._update_running(mean.detach(), var.detach(), n.detach())
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out

    @torch.no_grad()
    def _update_running(self, mean, var, n) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        # momentum None = cumulative average (precise BN sets it), as nn.BatchNorm2d does
        factor = (
            self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        )
        unbiased = var * n / (n - 1).clamp(min=1)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased, factor)


def convert_sync_bn(module: nn.Module, device_type: str) -> nn.Module:
    """Every BatchNorm2d of `module` replaced by its synchronised form (weights kept)."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlobalBatchNorm2d):
        bn = GlobalBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        bn.load_state_dict(module.state_dict())
        bn.train(module.training)
        return bn
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module
