"""tests/gpu: the CUDA paths (AMP, channels-last, GPU timing and memory, fractional GPUs in a
study). Every test here is skipped where CUDA is not available, and fails instead when
FASTSCALE_REQUIRE_GPU=1 (so a GPU machine whose torch lost CUDA cannot pass by skipping).
Run on a GPU machine (docs/training.md, "GPU tests"):

    FASTSCALE_REQUIRE_GPU=1 bash scripts/test.sh tests/gpu
"""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    if os.environ.get("FASTSCALE_REQUIRE_GPU", "") not in ("", "0"):
        raise pytest.UsageError("FASTSCALE_REQUIRE_GPU=1 but torch sees no CUDA device")
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason="needs CUDA (run on a GPU machine: see tests/gpu/conftest.py)")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)
