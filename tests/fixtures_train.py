"""Fixtures for the training, data and timing tests: a tiny network and small data."""

import pytest

from spaces.specs import StageSpec


@pytest.fixture
def tiny_spec():
    """A 4-stage X-block network small enough to train an epoch in about a second."""
    return make_tiny_spec()


def make_tiny_spec():
    """tiny_spec for module-scoped fixtures."""
    return StageSpec(
        block="X",
        depths=(1, 1, 1, 1),
        widths=(16, 24, 32, 48),
        group_widths=(8, 8, 8, 8),
        bottlenecks=(1, 1, 1, 1),
        strides=(2, 2, 2, 2),
        resolution=16,
        stem_width=16,
    )


@pytest.fixture
def fast_config():
    """A short, single-threaded (so bitwise reproducible) Fashion-MNIST run."""
    from trials.training.recipe import TrainConfig

    return TrainConfig(
        epochs=2,
        batch_size=32,
        train_size=256,
        val_size=128,
        resolution=16,
        precise_bn=128,
        threads=1,
        seed=3,
    )


@pytest.fixture
def image_tree(tmp_path):
    """A tiny ImageNet-layout tree of PNGs: 3 classes, 4 train and 2 val images each."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for split, n in (("train", 4), ("val", 2)):
        for c, name in enumerate(("ant", "bee", "cat")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = 20 + 4 * i, 28 - 2 * i
                arr = rng.integers(0, 60, size=(h, w, 3), dtype=np.uint8)
                arr[..., c] += 150  # the class is its dominant colour: learnable
                Image.fromarray(arr).save(folder / f"{i}.png")
    return root
