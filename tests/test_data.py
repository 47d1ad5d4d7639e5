"""Datasets: Fashion-MNIST from the IDX files, subsets, batches, ImageFolder, missing data."""

import gzip

import numpy as np
import pytest
import torch

from trials.data.catalogue import INSTALL_HINT, DataError, DatasetMissing
from trials.data.datasets import load_dataset, read_idx
from trials.data.splits import stratified_subset


def test_fashion_mnist_shapes_labels_and_official_val_split():
    d = load_dataset("fashion-mnist", 28)
    assert (len(d.train), len(d.val)) == (60000, 10000)
    assert d.train.images.shape == (60000, 1, 28, 28) and d.train.images.dtype == torch.uint8
    assert (d.num_classes, d.in_channels) == (10, 1)
    assert np.bincount(d.val.labels.numpy()).tolist() == [1000] * 10
    assert d.train.labels.min() == 0 and d.train.labels.max() == 9


def test_subsets_are_stratified_seeded_and_resized_once():
    a = load_dataset("fashion-mnist", 32, train_size=500, val_size=200, seed=1)
    b = load_dataset("fashion-mnist", 32, train_size=500, val_size=200, seed=1)
    c = load_dataset("fashion-mnist", 32, train_size=500, val_size=200, seed=2)
    assert a.train.images.shape == (500, 1, 32, 32)
    assert np.bincount(a.train.labels.numpy()).tolist() == [50] * 10
    assert np.bincount(a.val.labels.numpy()).tolist() == [20] * 10
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)


def test_stratified_subset_keeps_class_proportions():
    labels = np.array([0] * 80 + [1] * 20)
    keep = stratified_subset(labels, 10, seed=0)
    assert len(set(keep.tolist())) == 10
    assert np.bincount(labels[keep]).tolist() == [8, 2]


def test_batches_order_fixed_by_seed_and_epoch():
    d = load_dataset("fashion-mnist", 16, train_size=100, val_size=50)

    def labels(epoch, seed=0):
        return torch.cat([y for _, y in d.train.batches(32, shuffle=True, seed=seed, epoch=epoch)])

    assert torch.equal(labels(0), labels(0))
    assert not torch.equal(labels(0), labels(1))
    assert sorted(labels(1).tolist()) == sorted(d.train.labels.tolist())
    x, y = next(d.val.batches(64))
    assert x.shape == (50, 1, 16, 16) and x.dtype == torch.float32 and y.shape == (50,)
    assert abs(float(x.mean())) < 0.5  # normalized
    dropped = list(d.train.batches(32, shuffle=True, drop_last=True))
    assert len(dropped) == d.train.num_batches(32, drop_last=True) == 3


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTSCALE_FASHION_MNIST", str(tmp_path))
    with pytest.raises(DatasetMissing, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion-mnist", 28)
    assert INSTALL_HINT in "apt-get install -y dataset-fashion-mnist"


def test_corrupt_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")  # claims 9 bytes, holds 3
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_image_folder_train_augments_val_center_crops(image_tree):
    d = load_dataset(str(image_tree), 16)
    assert (d.num_classes, d.in_channels, len(d.train), len(d.val)) == (3, 3, 12, 6)
    x, y = next(d.train.batches(12, shuffle=True, seed=0, epoch=0))
    assert x.shape == (12, 3, 16, 16) and sorted(y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    again, _ = next(d.train.batches(12, shuffle=True, seed=0, epoch=0))
    other, _ = next(d.train.batches(12, shuffle=True, seed=0, epoch=1))
    assert torch.equal(x, again) and not torch.equal(x, other)
    v1, vy = next(d.val.batches(6))
    v2, _ = next(d.val.batches(6))
    assert v1.shape == (6, 3, 16, 16) and torch.equal(v1, v2) and vy.tolist() == [0, 0, 1, 1, 2, 2]
    # the dominant colour channel survives the crop and normalization
    assert (v1.mean(dim=(2, 3)).argmax(1) == vy).all()


def test_image_folder_workers_give_the_same_batches(image_tree):
    d = load_dataset(str(image_tree), 16)
    x0, _ = next(d.train.batches(12, shuffle=True, seed=5, epoch=2))
    d.train.num_workers = 1
    x1, _ = next(d.train.batches(12, shuffle=True, seed=5, epoch=2))
    assert torch.equal(x0, x1)


def test_missing_or_malformed_image_folder(tmp_path, image_tree):
    with pytest.raises(DatasetMissing, match="neither 'fashion-mnist' nor an ImageFolder"):
        load_dataset(str(tmp_path / "nope"), 16)
    (tmp_path / "half" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetMissing, match="no val/"):
        load_dataset(str(tmp_path / "half"), 16)
    (image_tree / "val" / "dog").mkdir()
    with pytest.raises(DataError, match="dog"):
        load_dataset(str(image_tree), 16)
