"""The device and CPU threads a training or timing run uses, and its peak memory."""

from __future__ import annotations

import contextlib
import os
import resource

import torch

from spaces.errors import FastscaleError
from trials import available_cpus


def check_device(device: str) -> torch.device:
    """The torch device for "cpu" / "cuda"; CUDA must exist. On CUDA, cuDNN autotunes
    convolution algorithms for the (fixed) batch shapes of training and timing."""
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise FastscaleError("device 'cuda' requested but no CUDA GPU is available here")
        torch.backends.cudnn.benchmark = True
        return torch.device("cuda")
    raise FastscaleError(f"device must be cpu or cuda, got {device!r}")


def check_threads(n: int) -> int:
    """n CPU threads, if this process may run that many: no more than the cores its affinity
    mask allows nor OMP_THREAD_LIMIT (more only queue on the same cores, and an OpenMP pool
    that large can fail to start, "Thread creation failed", killing the process instead of
    refusing)."""
    cores = available_cpus()
    omp = os.environ.get("OMP_THREAD_LIMIT", "")
    limit = min(cores, int(omp)) if omp.isdigit() and int(omp) > 0 else cores
    if not 1 <= int(n) <= limit:
        where = f"OMP_THREAD_LIMIT={omp}" if limit < cores else "the cores this process may use"
        raise FastscaleError(f"--threads {n} is more than {where} ({limit}); allowed: 1..{limit}")
    return int(n)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run with n intra-op CPU threads (checked), restoring the previous count afterwards."""
    n = check_threads(n)
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def peak_memory(device: torch.device) -> int:
    """Peak bytes: GPU memory allocated this epoch, or the process' max resident set on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
