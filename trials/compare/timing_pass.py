"""One timing pass over every model of a comparison, after training, the same way for all.

Trainers measure their own epoch time while they train; on a shared machine, or with several
trials per node, the load differs from trial to trial (the same network measured 38 s in
one round and 56-62 s as a finalist), which biases runtime comparisons and the Pareto front.
So at the end the driver times a training step of every first-round model in one process
under the timing protocol of `fastscale time` and `calibrate` (`trials.timing.protocol`:
interleaved rounds, warm-up until steady, the fastest round): on CPU with one thread on the
process' CPU clock (time spent descheduled by other work is not counted), on CUDA with the
wall clock. The report converts seconds per image into seconds per epoch of the run's
training images.
"""

from __future__ import annotations

from trials.progress import Progress
from trials.timing.protocol import TimingProtocol

BATCH = 64
# the protocol's rule with two rounds, not three: these are the tiny models of a comparison,
# timed at batch 64 where one step is already many kernel calls, and the pass runs inside
# the main job's time budget (docs/planner.md, "Timing protocol")
PROTOCOL = TimingProtocol(rounds=2)


def timing_settings(config) -> dict:
    cpu = config.device == "cpu"
    return {
        "clock": "cpu" if cpu else "wall",
        "threads": 1 if cpu else None,
        "batch_size": BATCH,
        "device": config.device,
        "protocol": PROTOCOL.to_dict(),
    }


def epoch_images(config) -> int | None:
    """Training images per epoch, where known without reading the dataset."""
    if config.train_size:
        return int(config.train_size)
    if str(config.dataset).lower() in ("fashion-mnist", "fashion_mnist", "fmnist"):
        return 60000
    return None


def timing_pass(specs: dict, config, previous: dict | None = None, *, progress=True) -> dict:
    """{"clock", "threads", "batch_size", "device", "epoch_images", "seconds_per_image":
    {model: s}} for `specs` ({model id: spec as trained}); models already timed with the same
    settings in `previous` are reused."""
    from trials.timing.step_time import time_models

    settings = timing_settings(config)
    images = epoch_images(config)
    old = previous or {}
    same = all(old.get(k) == v for k, v in settings.items())
    times = dict(old.get("seconds_per_image") or {}) if same else {}
    todo = [m for m in specs if m not in times]
    bar = Progress("model rounds", enabled=None if progress else False)
    total = len(todo) * PROTOCOL.rounds
    done = 0

    def advance(i, rnd, record):
        nonlocal done
        done += 1
        bar.update(done, total, "timing pass")

    timed, load = time_models(
        [specs[m] for m in todo],
        PROTOCOL,
        progress=advance,
        batch_size=BATCH,
        device=config.device,
        threads=settings["threads"],
        clock=settings["clock"],
    )
    bar.clear()
    times.update({m: r["seconds_per_image"] for m, r in zip(todo, timed, strict=True)})
    return {**settings, "epoch_images": images, "seconds_per_image": times, "load": load}
