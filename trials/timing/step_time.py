"""Careful step timing: warm-up until steady, device sync, fixed threads and memory format.

`time_model` measures one round of the timing protocol (`trials.timing.protocol`) on one
model: a training step (forward + backward + SGD step, the unit of the paper's epoch time)
or an inference batch (eval mode, no grad), warmed up until steady, then timed; it reports
the median and the spread (interquartile range / median). The module's parameters and
BatchNorm statistics are restored afterwards, so timing a model mid-training is harmless.
`time_models` runs the whole protocol on several models: interleaved rounds, each model's
value the protocol's statistic of its rounds, and how busy the machine was meanwhile.

Both take a spec or an outside model (`trials.timing.outside.OutsideModel`: a PyTorch network
fastscale did not define, traced for its counts). An outside model's training step is the
same forward + backward + SGD step; its loss is cross-entropy against random labels when the
output is (N, K) logits, otherwise the mean of the output (`trials.timing.memory.step_loss`).
"""

from __future__ import annotations

import contextlib
import statistics
import time

import torch

from spaces.complexity import complexity
from spaces.errors import FastscaleError
from trials.timing.load import LoadSample, cpu_share, load_report
from trials.timing.memory import measure_step_memory, step_loss
from trials.timing.outside import OutsideModel
from trials.timing.protocol import DEFAULT, TimingProtocol, combine, interleave, time_round
from trials.training.device import check_device, torch_threads
from trials.training.recipe import CLOCKS, MODES, available_cpus, check_memory


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0]
        return v, v, v
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def time_model(
    spec,
    batch_size: int = 32,
    device: str = "cpu",
    mode: str = "train",
    resolution: int | None = None,
    threads: int | None = None,
    *,
    protocol: TimingProtocol = DEFAULT,
    model: torch.nn.Module | None = None,
    clock: str = "wall",
    on_step=None,
    memory: bool = False,
) -> dict:
    """Seconds per batch of `spec`: one round of `protocol` (warm-up until steady, then the
    median of `protocol.steps` timed steps); `time_models` runs the rounds.

    Random inputs at the resolution (default: the spec's), `spec.in_channels` channels and
    `spec.num_classes` random labels. `model` times an existing module built from `spec`
    instead of building one; its state is restored afterwards. Returns seconds_per_batch,
    seconds_per_image, spread (IQR / median), times (every timed step), warmup_times, cpu_share (process CPU
    seconds / wall seconds / threads while timing), flops, params, acts.

    `clock="cpu"` measures this process' CPU seconds instead of wall seconds (CPU only): on
    a machine shared with other work, time spent descheduled is not counted, so with one
    thread it reads what a quiet machine's wall clock would. `on_step(done, total)` is
    called after every step, warm-up included (progress displays).

    `memory=True` (train mode) also measures the peak bytes of one training step
    (`trials.timing.memory.measure_step_memory`) and reports it as `memory_bytes`.

    `spec` may be an `OutsideModel` (module doc): random inputs of its input shape (the
    resolution replaces its height and width), flops/params/acts and name from its trace.
    """
    _check_request(clock, device, mode, memory, batch_size)
    dev = check_device(device)
    outside = isinstance(spec, OutsideModel)
    resolution = int(resolution or spec.resolution)
    if resolution < 8:
        raise FastscaleError(f"resolution must be an integer >= 8, got {resolution}")
    spec = spec.with_resolution(resolution)
    if not outside:  # an outside model's size is known only once built
        check_memory(spec, batch_size, train=mode == "train", device=device)
    threads = int(threads or available_cpus())
    with torch_threads(threads):
        if model is None:
            from spaces.build import build_model

            torch.manual_seed(0)
            model = spec.build() if outside else build_model(spec)
        counts = _counts(spec)
        clock_fn = time.process_time if clock == "cpu" else time.perf_counter
        before = LoadSample.now()
        timed, peak = _measure(
            model, spec, batch_size, dev, mode, protocol, clock_fn, on_step, memory
        )
        share = cpu_share(before, LoadSample.now(), threads)
    setting = {"resolution": resolution, "batch_size": batch_size, "mode": mode}
    setting.update(device=device, threads=threads)
    measured = {"warmup_times": timed.warmup, "cpu_share": share}
    return _record(
        counts, setting, timed.steps, clock, measured | ({"memory_bytes": peak} if memory else {})
    )


def _counts(spec) -> dict:
    """flops, params, acts of a spec (`spaces.complexity`), or of an outside model's trace
    with its name and input shape."""
    if not isinstance(spec, OutsideModel):
        return complexity(spec).as_dict()
    traced = spec.trace()
    return {**traced.as_dict(), "name": spec.name, "input_shape": list(spec.input_shape)}


def time_models(
    specs: list,
    protocol: TimingProtocol = DEFAULT,
    *,
    memory: bool = False,
    progress=None,
    on_step=None,
    **settings,
) -> tuple[list[dict], dict]:
    """The whole protocol on `specs`: `protocol.rounds` interleaved rounds of `time_model`
    (`settings`: batch_size, device, mode, resolution, threads, clock). Returns one record
    per spec — `time_model`'s fields from its fastest round (or the round nearest the median),
    with `seconds_per_batch` / `seconds_per_image` the protocol's statistic of the rounds and
    `rounds` every round's seconds per batch — and the load report of the whole measurement
    (`trials.timing.load.load_report`). `memory=True` measures peak step memory in the first
    round. `progress(i, round, record)` after every model round; `on_step(i, done, at_most)`
    after every step."""
    before = LoadSample.now()

    def measure(i: int, rnd: int) -> dict:
        step = None if on_step is None else (lambda done, total: on_step(i, done, total))
        r = time_model(
            specs[i], protocol=protocol, memory=memory and rnd == 0, on_step=step, **settings
        )
        if progress is not None:
            progress(i, rnd, r)
        return r

    runs = interleave(len(specs), protocol, measure)
    threads = runs[0][0]["threads"] if runs else 1
    load = load_report(before, LoadSample.now(), threads)
    return [_combined(r, protocol) for r in runs], load


def _combined(runs: list[dict], protocol: TimingProtocol) -> dict:
    """One model's record from its rounds (see `time_models`)."""
    per_batch = [r["seconds_per_batch"] for r in runs]
    value = combine(per_batch, protocol)
    nearest = min(runs, key=lambda r: abs(r["seconds_per_batch"] - value))
    shares = [r["cpu_share"] for r in runs if r.get("cpu_share") is not None]
    return {
        **nearest,
        "seconds_per_batch": value,
        "seconds_per_image": value / nearest["batch_size"],
        "rounds": per_batch,
        "cpu_share": min(shares) if shares else None,
        "memory_bytes": runs[0].get("memory_bytes"),
        "protocol": protocol.to_dict(),
    }


def _record(counts: dict, setting: dict, times: list[float], clock: str, measured: dict) -> dict:
    """`time_model`'s result: the model's counts, the setting, the median and spread of the
    repeats, then what else was `measured` (the step's peak bytes)."""
    q1, median, q3 = _quartiles(times)
    return {
        **counts,
        **setting,
        "seconds_per_batch": median,
        "seconds_per_image": median / setting["batch_size"],
        "spread": (q3 - q1) / median if median > 0 else 0.0,
        "times": times,
        "clock": clock,
        **measured,
    }


def _check_request(clock, device, mode, memory, batch_size) -> None:
    if clock not in CLOCKS:
        raise FastscaleError(f"clock must be wall or cpu, got {clock!r}")
    if clock == "cpu" and device != "cpu":
        raise FastscaleError("clock 'cpu' measures CPU work; use the wall clock on cuda")
    if mode not in MODES:
        raise FastscaleError(f"mode must be train or infer, got {mode!r}")
    if memory and mode != "train":
        raise FastscaleError("memory is measured for training steps (mode 'train')")
    if batch_size < 1:
        raise FastscaleError(f"batch_size must be >= 1, got {batch_size}")


@contextlib.contextmanager
def _restored(model: torch.nn.Module):
    """Run, then put back the module's parameters, BatchNorm statistics, mode and device (and
    drop its gradients), so timing a model mid-training is harmless."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    orig_device = next(model.parameters()).device
    try:
        yield
    finally:
        for p in model.parameters():
            p.grad = None
        model.to(orig_device)
        model.load_state_dict(saved)
        model.train(was_training)


def _autocast_dtype(dev: torch.device):
    """Mixed precision on CUDA (bfloat16 where the GPU has it, else float16); None on CPU."""
    if dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _step_fn(model, x, y, dev: torch.device, mode: str, amp):
    """The timed unit as a closure: a training step (forward, backward, SGD step) in train
    mode, one no-grad forward in eval mode otherwise."""
    if mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)

        def train_step():
            with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                out = model(x)
            loss = step_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return train_step
    model.eval()

    def infer_step():
        with torch.no_grad(), torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            model(x)

    return infer_step


ANY_CLASSES = 2**30  # random labels of an outside model, before `step_loss`'s modulo


def _input_shape(spec) -> tuple:
    if isinstance(spec, OutsideModel):
        return tuple(spec.input_shape)
    return (spec.in_channels, spec.resolution, spec.resolution)


def _measure(model, spec, batch_size, dev, mode, protocol, clock_fn, on_step=None, memory=False):
    """(the round's `RoundTiming`, peak step bytes or None), the module restored afterwards."""
    cuda = dev.type == "cuda"
    memory_format = torch.channels_last if cuda else torch.contiguous_format
    with _restored(model):
        model.to(dev)
        if cuda:  # stays channels_last afterwards: harmless, and what training on CUDA uses
            model.to(memory_format=memory_format)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch_size, *_input_shape(spec), generator=gen)
        # an outside model's class count shows only in its output: `step_loss` takes the
        # labels modulo it
        classes = ANY_CLASSES if isinstance(spec, OutsideModel) else spec.num_classes
        y = torch.randint(0, classes, (batch_size,), generator=gen)
        x = x.to(dev).contiguous(memory_format=memory_format)
        y = y.to(dev)
        amp = _autocast_dtype(dev)
        step = _step_fn(model, x, y, dev, mode, amp)
        sync = (lambda: torch.cuda.synchronize(dev)) if cuda else None
        timed = time_round(step, clock_fn, protocol, sync=sync, on_step=on_step)
        peak = None
        if memory:
            peak = measure_step_memory(model, x, y, dev, amp)
    return timed, peak
