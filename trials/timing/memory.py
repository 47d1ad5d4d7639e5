"""Peak memory of one training step, measured (what the planner's memory model is fitted to).

The peak counts everything a step holds at its highest point: weights, BatchNorm buffers,
momentum buffers, the input batch, the activations saved for the backward pass, gradients
and temporaries. Gradients are released (set to None) before the measured step, as the
training loop does, so they count when backward allocates them.

- CUDA: `torch.cuda.max_memory_allocated` over the step, after resetting the peak.
- CPU: PyTorch has no peak counter for its CPU allocator, and the resident set size mixes
  in the interpreter, libraries and allocator caching, so the step runs under the PyTorch
  profiler with memory events on: every allocation and free of a tensor in the step is an
  event, and the running sum of their sizes peaks at the step's peak allocation. The
  tensors alive before the step (weights, buffers, optimizer state, inputs) are added.
"""

from __future__ import annotations

import contextlib
import os
import sys

import torch
import torch.nn.functional as F

from spaces.errors import FastscaleError


def _bytes_of(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.untyped_storage().nbytes()
    return total


def _live_before(model, opt, inputs) -> int:
    state = [v for s in opt.state.values() for v in s.values()]
    return _bytes_of([*model.parameters(), *model.buffers(), *state, *inputs])


@contextlib.contextmanager
def _quiet_native_stderr():
    """The profiler's native library logs lines of its own on file descriptor 2 at every
    start and stop (and a warning per tensor from before the start): keep progress output
    readable by pointing fd 2 at /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak(step) -> int:
    """Peak bytes allocated (above what was alive before) while `step` runs on the CPU."""
    from torch.profiler import ProfilerActivity, profile

    with (
        _quiet_native_stderr(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        step()
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError as exc:  # the profiler's result API moved
        raise FastscaleError(f"this PyTorch's profiler gives no memory events: {exc}") from None
    sizes = sorted(
        (e.start_ns(), e.nbytes())
        for e in events
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    )
    running = peak = 0
    for _, nbytes in sizes:  # frees of blocks from before the step are not reported
        running += nbytes
        peak = max(peak, running)
    return peak


def step_loss(out, y):
    """The training step's loss: cross-entropy against labels `y` (taken modulo the class
    count) when `out` is (N, K) logits, otherwise the mean of `out` (an outside model with
    another output: the backward pass then runs through every operation all the same)."""
    out = out.float()
    if out.dim() == 2:
        return F.cross_entropy(out, y % out.shape[1])
    return out.mean()


def measure_step_memory(model, x, y, device: torch.device, amp=None) -> int:
    """Peak bytes of one SGD-with-momentum training step of `model` on batch (x, y).

    Runs one unmeasured step first, so the optimizer's momentum buffers exist (as they do
    in every step after the first), then measures one.
    """
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = model(x)
        loss = step_loss(out, y)
        loss.backward()
        opt.step()

    step()
    opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device))
    else:
        peak = _live_before(model, opt, (x, y)) + _cpu_peak(step)
    opt.zero_grad(set_to_none=True)
    return peak
