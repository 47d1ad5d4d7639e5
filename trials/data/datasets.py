"""Datasets for training: Fashion-MNIST from the Debian package, or an ImageFolder tree.

Fashion-MNIST is small, so it lives in memory as one uint8 tensor, resized ONCE at load time
to the training resolution (bilinear; 28 px stays as is) and kept single-channel: the spec's
`in_channels` is set to 1 so the stem conv really has Cin = 1 and the counted flops/params
match the module. Batches are slices of that tensor (on the GPU when training there), so
loading never starves the model. The official 10k test set is the validation split.

An ImageFolder tree is `trials.data.image_folder`; which datasets there are and their shape is
`trials.data.catalogue` (no torch); what both kinds of split share is `trials.data.splits`.
This module loads either kind (`load_dataset`) and offers all of their names.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trials.data.catalogue import (
    FASHION_FILES,
    DataError,
    check_fashion_mnist,
    dataset_info,
)
from trials.data.image_folder import (
    load_image_folder,
)
from trials.data.splits import (
    Datasets,
    batch_count,
    drops_last,
    shuffle_seed,
    split_subset,
)

FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
# Resize the whole in-memory set once only while it stays below this many bytes (uint8);
# above it (e.g. 60k images at 224 px) each batch is resized on the fly instead.
PRESIZE_LIMIT = 2 * 1024**3


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): magic 0x0000 0x08 ndim, big-endian dims, then uint8 data."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise DataError(f"{path} is not an IDX uint8 file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: {data.size} bytes for shape {tuple(dims)}")
    return data.reshape(tuple(dims))


def load_fashion_mnist(
    split: str, root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 N×1×28×28, labels int64 N) of "train" (60k) or "val" (the 10k test set)."""
    base = check_fashion_mnist(root)
    paths = [base / name for name in FASHION_FILES[split]]
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"Fashion-MNIST files in {base} have inconsistent shapes")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 N×C×h×w -> uint8 N×C×r×r, bilinear (antialiased when shrinking)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = F.interpolate(
        images.float(),
        size=(resolution, resolution),
        mode="bilinear",
        align_corners=False,
        antialias=resolution < images.shape[-1],
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


class TensorSplit:
    """An in-memory split: uint8 images, int64 labels, normalized per batch."""

    def __init__(self, images, labels, resolution, mean, std):
        self.resolution = int(resolution)
        presize = images.shape[0] * images.shape[1] * self.resolution**2 <= PRESIZE_LIMIT
        self.images = _resize(images, self.resolution) if presize else images
        self.labels = labels
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> TensorSplit:
        """Move the whole split to a device once (Fashion-MNIST fits on any GPU)."""
        for name in ("images", "labels", "mean", "std"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def batches(self, batch_size: int, *, shuffle=False, seed=0, epoch=0, drop_last=False):
        """Yield (float images, labels); the order is fixed by (seed, epoch)."""
        n = len(self)
        if shuffle:
            gen = torch.Generator().manual_seed(shuffle_seed(seed, epoch))
            order = torch.randperm(n, generator=gen).to(self.labels.device)
        else:
            order = None
        stop = n - n % batch_size if drops_last(n, batch_size, drop_last) else n
        for start in range(0, stop, batch_size):
            idx = (
                order[start : start + batch_size]
                if order is not None
                else slice(start, start + batch_size)
            )
            x = self.images[idx]
            if x.shape[-1] != self.resolution:
                x = _resize(x, self.resolution)
            x = (x.float().div_(255) - self.mean) / self.std
            yield x, self.labels[idx]

    def num_batches(self, batch_size: int, drop_last=False) -> int:
        return batch_count(len(self), batch_size, drop_last)

    def batches_of(self, index_batches, *, epoch=0):
        """Yield (float images, labels) of each given list of sample indices, in order (a
        data-parallel worker's share of each global batch; no augmentation to seed)."""
        for idx in index_batches:
            idx = torch.as_tensor(idx, dtype=torch.int64).to(self.labels.device)
            x = self.images[idx]
            if x.shape[-1] != self.resolution:
                x = _resize(x, self.resolution)
            yield (x.float().div_(255) - self.mean) / self.std, self.labels[idx]


def load_dataset(
    dataset: str = "fashion-mnist",
    resolution: int = 28,
    *,
    train_size: int | None = None,
    val_size: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
) -> Datasets:
    """The train and validation splits of "fashion-mnist" or an ImageFolder path.

    `train_size` / `val_size` take seeded stratified subsets (the same seed gives the same
    images); `root` overrides where Fashion-MNIST is read from.
    """
    resolution = int(resolution)
    if resolution < 8:
        raise DataError(f"resolution must be >= 8, got {resolution}")
    info = dataset_info(dataset, check=root is None)
    if info.image_folder:
        return load_image_folder(
            dataset, resolution, train_size=train_size, val_size=val_size, seed=seed
        )
    parts = {}
    for split, size in (("train", train_size), ("val", val_size)):
        images, labels = load_fashion_mnist(split, root)
        keep = split_subset(labels.numpy(), size, seed, split)
        if keep is not None:
            keep = torch.from_numpy(keep)
            images, labels = images[keep], labels[keep]
        parts[split] = TensorSplit(images, labels, resolution, FASHION_MEAN, FASHION_STD)
    return Datasets(parts["train"], parts["val"], info.classes, info.channels, info.name)
