"""What both kinds of split (in-memory tensors, ImageFolder files) share: the Datasets pair a
loader returns, seed derivation, the seeded stratified subset and batch counting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Salts of the seeded streams, so that subsets and shuffles draw unrelated numbers.
SUBSET_SALTS = {"train": 1, "val": 2}
SHUFFLE_SALT = 11


class Split(Protocol):
    """What the train loop needs of a split: in-memory tensors (`datasets.TensorSplit`) or
    image files (`image_folder.ImageFolderSplit`); both live beside this module, which
    knows neither."""

    labels: object

    def __len__(self) -> int: ...


@dataclass
class Datasets:
    train: Split
    val: Split
    num_classes: int
    in_channels: int
    name: str


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (so epochs and samples get unrelated streams)."""
    seq = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n indices, classes in proportion: a seeded permutation taken round-robin by class."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    lab = labels[perm]
    rank = np.empty(len(lab), dtype=np.float64)
    for c in np.unique(lab):
        where = np.flatnonzero(lab == c)
        rank[where] = (np.arange(len(where)) + 0.5) / len(where)  # fraction into its class
    order = np.lexsort((perm, rank))  # earliest fraction first: proportional interleaving
    return np.sort(perm[order[:n]])


def split_subset(labels: np.ndarray, size: int | None, seed: int, split: str) -> np.ndarray | None:
    """The indices a `size`-image subset of split "train" or "val" keeps (None: all of it);
    the same seed gives the same images."""
    if size is None:
        return None
    return stratified_subset(labels, size, derive_seed(seed, SUBSET_SALTS[split]))


def shuffle_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's shuffle order."""
    return derive_seed(seed, epoch, SHUFFLE_SALT)


def drops_last(n: int, batch_size: int, drop_last: bool) -> bool:
    """Whether a ragged last batch is dropped: only when a full batch remains (a set smaller
    than one batch still trains on one batch)."""
    return drop_last and n >= batch_size


def batch_count(n: int, batch_size: int, drop_last: bool) -> int:
    """How many batches an epoch over n items has."""
    return n // batch_size if drops_last(n, batch_size, drop_last) else math.ceil(n / batch_size)
