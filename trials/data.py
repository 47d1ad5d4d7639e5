"""Datasets for training: Fashion-MNIST from the Debian package, or an ImageFolder tree.

Fashion-MNIST is small, so it lives in memory as one uint8 tensor, resized ONCE at load time
to the training resolution (bilinear; 28 px stays as is) and kept single-channel: the spec's
`in_channels` is set to 1 so the stem conv really has Cin = 1 and the counted flops/params
match the module. Batches are slices of that tensor (on the GPU when training there), so
loading never starves the model. The official 10k test set is the validation split.

An ImageFolder tree (`root/train/<class>/*`, `root/val/<class>/*`, ImageNet layout) is
decoded with Pillow in DataLoader workers: random-resized-crop (scale 0.08-1, aspect 3/4-4/3)
+ horizontal flip for training, resize to r/0.875 + center crop for validation, all done with
torch ops on the decoded tensor. Augmentation randomness comes from (seed, epoch, index), so
it does not depend on the number of workers.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spaces.errors import FastscaleError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "FASTSCALE_FASHION_MNIST"
INSTALL_HINT = "apt-get install -y dataset-fashion-mnist"
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")
# Resize the whole in-memory set once only while it stays below this many bytes (uint8);
# above it (e.g. 60k images at 224 px) each batch is resized on the fly instead.
PRESIZE_LIMIT = 2 * 1024**3


class DatasetMissing(FastscaleError):
    """The dataset files are not there; the message says how to install them."""


class DataError(FastscaleError):
    """A dataset that exists but cannot be used as asked (bad tree, bad sizes)."""


@dataclass
class Datasets:
    train: TensorSplit | ImageFolderSplit
    val: TensorSplit | ImageFolderSplit
    num_classes: int
    in_channels: int
    name: str


def fashion_mnist_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


# -- the dataset catalogue ----------------------------------------------------------------------
# Every place that needs a dataset's shape (the classifier's classes, the stem's input
# channels) asks `dataset_info`; `trained_spec` applies it. Named datasets are listed here;
# any other name is the path of an ImageFolder tree, whose classes are its train/ folders.
NAMED_DATASETS = {"fashion-mnist": {"aliases": ("fashion_mnist", "fmnist"), "classes": 10,
                                    "channels": 1}}  # fmt: skip
_ALIASES = {
    alias: name for name, entry in NAMED_DATASETS.items() for alias in (name, *entry["aliases"])
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model trained on a dataset must know: its canonical name, classes, channels."""

    name: str  # canonical name, or the ImageFolder path as given
    classes: int | None  # None: an ImageFolder that is not there (unchecked lookups only)
    channels: int
    image_folder: bool


def dataset_info(dataset: str, check: bool = True) -> DatasetInfo:
    """The catalogue entry of a dataset name or ImageFolder path. With `check`, the files must
    be there (DatasetMissing says how to get them); without, a missing tree has classes None."""
    name = _ALIASES.get(str(dataset).lower())
    if name is not None:
        if check:
            _check_fashion_mnist()
        entry = NAMED_DATASETS[name]
        return DatasetInfo(name, entry["classes"], entry["channels"], False)
    if check:
        _check_image_folder(dataset)
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


def _check_fashion_mnist(root: str | Path | None = None) -> Path:
    base = fashion_mnist_root(root)
    missing = [n for pair in FASHION_FILES.values() for n in pair if not (base / n).is_file()]
    if missing:
        raise DatasetMissing(
            f"Fashion-MNIST not found in {base} (missing {', '.join(missing)}); install it with "
            f"`{INSTALL_HINT}` or point ${FASHION_MNIST_ENV} at a directory holding the IDX files"
        )
    return base


def _check_image_folder(path: str | Path) -> Path:
    from spaces.io import short_path

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
    base = _check_fashion_mnist(root)
    paths = [base / name for name in FASHION_FILES[split]]
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"Fashion-MNIST files in {base} have inconsistent shapes")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


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
            gen = torch.Generator().manual_seed(derive_seed(seed, epoch, 11))
            order = torch.randperm(n, generator=gen).to(self.labels.device)
        else:
            order = None
        stop = n - n % batch_size if drop_last and n >= batch_size else n
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
        n = len(self)
        return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (so epochs and samples get unrelated streams)."""
    seq = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


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
    if not info.image_folder:
        parts = {}
        for split, size, salt in (("train", train_size, 1), ("val", val_size, 2)):
            images, labels = load_fashion_mnist(split, root)
            if size is not None:
                keep = torch.from_numpy(
                    stratified_subset(labels.numpy(), size, derive_seed(seed, salt))
                )
                images, labels = images[keep], labels[keep]
            parts[split] = TensorSplit(images, labels, resolution, FASHION_MEAN, FASHION_STD)
        return Datasets(parts["train"], parts["val"], info.classes, info.channels, info.name)
    return load_image_folder(
        dataset, resolution, train_size=train_size, val_size=val_size, seed=seed
    )


# -- ImageFolder ------------------------------------------------------------------------------
def _scan(split_dir: Path, classes: list[str] | None) -> tuple[list[str], np.ndarray, list[str]]:
    if classes is None:
        classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    index = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for c in classes:
        folder = split_dir / c
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
                files.append(str(f))
                labels.append(index[c])
    extra = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name not in index)
    if extra:
        raise DataError(f"{split_dir} has class folder(s) {', '.join(extra[:5])} that train/ lacks")
    return files, np.asarray(labels, dtype=np.int64), classes


def load_image_folder(
    path: str | Path,
    resolution: int,
    *,
    train_size: int | None = None,
    val_size: int | None = None,
    seed: int = 0,
) -> Datasets:
    """ImageNet-layout tree: path/train/<class>/<image>, path/val/<class>/<image>."""
    root = _check_image_folder(path)
    train_files, train_labels, classes = _scan(root / "train", None)
    val_files, val_labels, _ = _scan(root / "val", classes)
    if len(classes) < 2 or not train_files or not val_files:
        raise DataError(f"ImageFolder {root} needs >= 2 classes and images in train/ and val/")
    splits = []
    for files, labels, size, salt, train in (
        (train_files, train_labels, train_size, 1, True),
        (val_files, val_labels, val_size, 2, False),
    ):
        if size is not None:
            keep = stratified_subset(labels, size, derive_seed(seed, salt))
            files, labels = [files[i] for i in keep], labels[keep]
        splits.append(ImageFolderSplit(files, labels, resolution, train=train, seed=seed))
    return Datasets(splits[0], splits[1], len(classes), 3, str(root))


def random_resized_crop(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A crop of 8-100 % of the area with aspect ratio 3/4-4/3 (center crop if none fits)."""
    _, h, w = img.shape
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            i, j = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return img[:, i : i + ch, j : j + cw]
    side = min(h, w)
    i, j = (h - side) // 2, (w - side) // 2
    return img[:, i : i + side, j : j + side]


def resize_center_crop(img: torch.Tensor, resolution: int, crop_fraction=0.875) -> torch.Tensor:
    """Shorter side to resolution/0.875, then the central resolution×resolution."""
    _, h, w = img.shape
    short = max(resolution, int(round(resolution / crop_fraction)))
    nh, nw = (
        (short, max(short, round(w * short / h)))
        if h <= w
        else (max(short, round(h * short / w)), short)
    )
    img = _interp(img, nh, nw)
    i, j = (nh - resolution) // 2, (nw - resolution) // 2
    return img[:, i : i + resolution, j : j + resolution]


def _interp(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if img.shape[-2:] == (h, w):
        return img.float()
    shrink = h < img.shape[-2] or w < img.shape[-1]
    out = F.interpolate(
        img[None].float(), size=(h, w), mode="bilinear", align_corners=False, antialias=shrink
    )
    return out[0]


class ImageFolderSplit(torch.utils.data.Dataset):
    """Decoded lazily in DataLoader workers; augmentation seeded by (seed, epoch, index)."""

    def __init__(self, files, labels, resolution, *, train: bool, seed: int = 0):
        self.files, self.labels = list(files), torch.as_tensor(labels, dtype=torch.int64)
        self.resolution, self.train, self.seed, self.epoch = int(resolution), train, seed, 0
        self.mean = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
        self.num_workers, self.pin_memory = 0, False

    def __len__(self) -> int:
        return len(self.files)

    def to(self, device) -> ImageFolderSplit:
        self.pin_memory = str(device).startswith("cuda")
        return self

    def decode(self, index: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.files[index]) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def __getitem__(self, index: int):
        img = self.decode(index)
        r = self.resolution
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            img = _interp(random_resized_crop(img, rng), r, r)
            if rng.random() < 0.5:
                img = img.flip(-1)
        else:
            img = resize_center_crop(img, r)
        return (img.div(255) - self.mean) / self.std, self.labels[index]

    def batches(self, batch_size: int, *, shuffle=False, seed=0, epoch=0, drop_last=False):
        self.epoch = epoch
        gen = torch.Generator().manual_seed(derive_seed(seed, epoch, 11))
        loader = torch.utils.data.DataLoader(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=gen if shuffle else None,
            drop_last=drop_last and len(self) >= batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        yield from loader

    def num_batches(self, batch_size: int, drop_last=False) -> int:
        n = len(self)
        return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)
