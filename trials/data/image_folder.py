"""ImageFolder datasets (ImageNet layout: `root/train/<class>/*`, `root/val/<class>/*`).

Images are decoded with Pillow in DataLoader workers: random-resized-crop (scale 0.08-1,
aspect 3/4-4/3) + horizontal flip for training, resize to r/0.875 + center crop for
validation, all done with torch ops on the decoded tensor. Augmentation randomness comes from
(seed, epoch, index), so it does not depend on the number of workers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trials.data.catalogue import DataError, check_image_folder
from trials.data.splits import Datasets, batch_count, drops_last, shuffle_seed, split_subset

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")


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
    root = check_image_folder(path)
    train_files, train_labels, classes = _scan(root / "train", None)
    val_files, val_labels, _ = _scan(root / "val", classes)
    if len(classes) < 2 or not train_files or not val_files:
        raise DataError(f"ImageFolder {root} needs >= 2 classes and images in train/ and val/")
    splits = []
    for split, files, labels, size in (
        ("train", train_files, train_labels, train_size),
        ("val", val_files, val_labels, val_size),
    ):
        keep = split_subset(labels, size, seed, split)
        if keep is not None:
            files, labels = [files[i] for i in keep], labels[keep]
        splits.append(
            ImageFolderSplit(files, labels, resolution, train=split == "train", seed=seed)
        )
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
        gen = torch.Generator().manual_seed(shuffle_seed(seed, epoch))
        loader = torch.utils.data.DataLoader(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=gen if shuffle else None,
            drop_last=drops_last(len(self), batch_size, drop_last),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        yield from loader

    def batches_of(self, index_batches, *, epoch=0):
        """Yield the batches of the given index lists (a data-parallel worker's share of each
        global batch); a sample's augmentation depends on (seed, epoch, index) only."""
        self.epoch = epoch
        loader = torch.utils.data.DataLoader(
            self,
            batch_sampler=[list(map(int, b)) for b in index_batches],
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        yield from loader

    def num_batches(self, batch_size: int, drop_last=False) -> int:
        return batch_count(len(self), batch_size, drop_last)
