"""The one timing protocol of `time`, `calibrate`, the compare timing pass and the benchmarks.

A measurement of several models is `rounds` interleaved rounds: every model once per round,
the first round in the given order, later rounds in a seeded shuffled order (so no model
always follows the same neighbour, whose caches and allocator state it would inherit).
Within a round a model is built, warmed up until steady, then timed for `steps` steps; the
round's value is the median of those steps. The model's value is the `statistic` of its
round values: `min` (default), the fastest round, because other work on a shared host only
ever adds time; or `median`.

**Warm-up until steady.** The first training step of a freshly built network on a CPU took
1.4-2.2x its steady time (allocator growth, oneDNN primitive creation; 4 RegNet/EfficientNet
models, batch 16, one thread, docs/planner.md "Timing protocol"), the second was within the
noise of the rest, and a rebuild of the same network in a later round started at
1.1-1.3x (primitives are cached per shape). So: at least `min_warmup` steps, then stop at
the first step where the last `window` warm-up steps agree within `tolerance` (max / min − 1),
or at `max_warmup` steps. On a quiet machine that is 2-3 steps; under load the steps never
agree and the cap bounds the cost (the fastest-round statistic then absorbs the noise).

Pure Python: the clock and the step are passed in, so the rule is testable with any clock.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from spaces.errors import FastscaleError

STATISTICS = ("min", "median")


class TimingProtocolError(FastscaleError):
    """A timing protocol with impossible counts or an unknown statistic."""


@dataclass(frozen=True)
class TimingProtocol:
    steps: int = 3  # timed steps per round; the round's value is their median
    rounds: int = 3  # interleaved rounds across models
    min_warmup: int = 1  # untimed steps always run before the steady check
    max_warmup: int = 5  # cap on untimed steps (a busy machine never looks steady)
    window: int = 2  # the last `window` warm-up steps must agree ...
    tolerance: float = 0.10  # ... within this relative spread (max / min - 1)
    statistic: str = "min"  # of the round values: "min" (fastest round) or "median"
    shuffle: bool = True  # rounds after the first in a seeded shuffled order

    def __post_init__(self):
        if self.steps < 1 or self.rounds < 1:
            raise TimingProtocolError(
                f"steps and rounds must be >= 1, got steps={self.steps}, rounds={self.rounds}"
            )
        if not 0 <= self.min_warmup <= self.max_warmup:
            raise TimingProtocolError(
                f"warm-up must satisfy 0 <= min_warmup <= max_warmup, got "
                f"{self.min_warmup} and {self.max_warmup}"
            )
        if self.window < 1 or not self.tolerance >= 0:
            raise TimingProtocolError(
                f"window must be >= 1 and tolerance >= 0, got {self.window}, {self.tolerance}"
            )
        if self.statistic not in STATISTICS:
            raise TimingProtocolError(
                f"statistic must be one of {', '.join(STATISTICS)}, got {self.statistic!r}"
            )

    def max_steps(self) -> int:
        """Steps one round runs at most (progress displays)."""
        return self.max_warmup + self.steps

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


DEFAULT = TimingProtocol()


def steady(times: list[float], protocol: TimingProtocol) -> bool:
    """Whether warm-up can stop after these warm-up step times (module doc)."""
    if len(times) >= protocol.max_warmup:
        return True
    if len(times) < max(protocol.min_warmup, protocol.window):
        return False
    last = times[-protocol.window :]
    return min(last) > 0 and max(last) / min(last) - 1 <= protocol.tolerance


@dataclass
class RoundTiming:
    warmup: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)

    @property
    def value(self) -> float:
        return statistics.median(self.steps)


def time_round(
    step: Callable[[], None],
    clock: Callable[[], float],
    protocol: TimingProtocol,
    *,
    sync: Callable[[], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> RoundTiming:
    """Warm `step` up until steady, then time `protocol.steps` steps with `clock` (`sync`, e.g.
    a CUDA synchronize, runs before each reading). `on_step(done, at_most)` after every step."""
    out, done = RoundTiming(), 0

    def one() -> float:
        nonlocal done
        if sync:
            sync()
        tic = clock()
        step()
        if sync:
            sync()
        elapsed = clock() - tic
        done += 1
        if on_step is not None:
            on_step(done, protocol.max_steps())
        return elapsed

    warmed = protocol.max_warmup == 0
    while not warmed:
        out.warmup.append(one())
        warmed = steady(out.warmup, protocol)
    for _ in range(protocol.steps):
        out.steps.append(one())
    return out


def round_order(n: int, rnd: int, protocol: TimingProtocol) -> list[int]:
    """Indices of `n` models in the order round `rnd` visits them (module doc)."""
    order = list(range(n))
    if protocol.shuffle and rnd > 0:
        random.Random(rnd).shuffle(order)
    return order


def interleave(n: int, protocol: TimingProtocol, measure: Callable[[int, int], object]) -> list:
    """[[measure(i, round) for each round] for each model i], rounds interleaved across the
    models: every model is measured once before any is measured again."""
    runs: list[list] = [[] for _ in range(n)]
    for rnd in range(protocol.rounds):
        for i in round_order(n, rnd, protocol):
            runs[i].append(measure(i, rnd))
    return runs


def combine(values: list[float], protocol: TimingProtocol) -> float:
    """A model's value from its round values: the fastest round, or their median."""
    return min(values) if protocol.statistic == "min" else statistics.median(values)
