"""The dataset catalogue: which datasets there are, their shape, and whether they are here.

Every place that needs a dataset's shape (the classifier's classes, the stem's input
channels) asks `dataset_info`; `trained_spec` applies it. Named datasets are listed in
`NAMED_DATASETS`; any other name is the path of an ImageFolder tree, whose classes are its
train/ folders. No torch here: the CLI, studies and comparisons ask the catalogue without
loading a dataset (`trials.data.datasets` loads them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from spaces.errors import FastscaleError
from spaces.io import short_path

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "FASTSCALE_FASHION_MNIST"
INSTALL_HINT = "apt-get install -y dataset-fashion-mnist"
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
NAMED_DATASETS = {"fashion-mnist": {"aliases": ("fashion_mnist", "fmnist"), "classes": 10,
                                    "channels": 1}}  # fmt: skip
_ALIASES = {
    alias: name for name, entry in NAMED_DATASETS.items() for alias in (name, *entry["aliases"])
}


class DatasetMissing(FastscaleError):
    """The dataset files are not there; the message says how to install them."""


class DataError(FastscaleError):
    """A dataset that exists but cannot be used as asked (bad tree, bad sizes)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model trained on a dataset must know: its canonical name, classes, channels."""

    name: str  # canonical name, or the ImageFolder path as given
    classes: int | None  # None: an ImageFolder that is not there (unchecked lookups only)
    channels: int
    image_folder: bool


def fashion_mnist_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def dataset_info(dataset: str, check: bool = True) -> DatasetInfo:
    """The catalogue entry of a dataset name or ImageFolder path. With `check`, the files must
    be there (DatasetMissing says how to get them); without, a missing tree has classes None."""
    name = _ALIASES.get(str(dataset).lower())
    if name is not None:
        if check:
            check_fashion_mnist()
        entry = NAMED_DATASETS[name]
        return DatasetInfo(name, entry["classes"], entry["channels"], False)
    if check:
        check_image_folder(dataset)
    try:
        train = Path(dataset) / "train"
        classes = sum(1 for p in train.iterdir() if p.is_dir()) if train.is_dir() else None
    except OSError:
        classes = None
    return DatasetInfo(str(dataset), classes, 3, True)


def trained_spec(spec, dataset: str, resolution: int | None = None):
    """The spec as trained on `dataset`: its classes and input channels, the run's resolution
    (None keeps the spec's). A missing ImageFolder leaves the classes as they are."""
    info = dataset_info(dataset, check=False)
    changes = {"in_channels": info.channels}
    if info.classes is not None:
        changes["num_classes"] = info.classes
    if resolution:
        changes["resolution"] = int(resolution)
    return spec.replace(**changes)


def check_fashion_mnist(root: str | Path | None = None) -> Path:
    """The directory holding the four Fashion-MNIST IDX files, or DatasetMissing."""
    base = fashion_mnist_root(root)
    missing = [n for pair in FASHION_FILES.values() for n in pair if not (base / n).is_file()]
    if missing:
        raise DatasetMissing(
            f"Fashion-MNIST not found in {base} (missing {', '.join(missing)}); install it with "
            f"`{INSTALL_HINT}` or point ${FASHION_MNIST_ENV} at a directory holding the IDX files"
        )
    return base


def check_image_folder(path: str | Path) -> Path:
    """The root of an ImageFolder tree with train/ and val/ and >= 2 classes, or an error."""

    shown = short_path(path)
    try:
        is_dir = Path(path).is_dir() and len(str(path)) < 4096
    except (OSError, ValueError):
        is_dir = False
    if not is_dir:
        raise DatasetMissing(
            f"dataset {shown} is neither {' or '.join(map(repr, NAMED_DATASETS))} nor an ImageFolder "
            f"directory (expected PATH/train/<class>/*.jpg and PATH/val/<class>/*.jpg); "
            f"for Fashion-MNIST install it with `{INSTALL_HINT}`"
        )
    root = Path(path)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DatasetMissing(f"ImageFolder {shown} has no {split}/ directory of class folders")
    classes = [p for p in (root / "train").iterdir() if p.is_dir()]
    if len(classes) < 2:
        raise DataError(
            f"ImageFolder {shown} needs >= 2 class folders in train/, has {len(classes)}"
        )
    return root
