"""The one timing protocol (trials.timing.protocol): the warm-up rule on a scripted clock,
interleaved rounds, counts and the statistic; then the same structure on real short timings.
No wall-clock thresholds: only what the protocol decides from the readings it gets."""

import pytest

from trials.timing.load import LoadSample, load_line, load_report
from trials.timing.protocol import (
    DEFAULT,
    TimingProtocol,
    TimingProtocolError,
    combine,
    interleave,
    round_order,
    steady,
    time_round,
)
from trials.timing.step_time import time_models


class ScriptedClock:
    """A clock that each step advances by the next scripted duration."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def step(self):
        self.now += self.durations[self.calls]
        self.calls += 1


def run(durations, protocol):
    clock = ScriptedClock(durations)
    return time_round(clock.step, clock, protocol), clock


def test_warmup_stops_once_the_last_window_agrees():
    p = TimingProtocol(steps=3, min_warmup=1, max_warmup=6, window=2, tolerance=0.10)
    # a slow first step (allocations), then steady: warm-up ends after step 3
    timed, clock = run([2.0, 1.5, 1.375, 1.0, 1.125, 0.875], p)
    assert timed.warmup == [2.0, 1.5, 1.375] and timed.steps == [1.0, 1.125, 0.875]
    assert timed.value == 1.0 and clock.calls == 6  # the median of the timed steps


def test_warmup_is_capped_when_the_machine_never_looks_steady():
    p = TimingProtocol(steps=2, min_warmup=1, max_warmup=4, window=2, tolerance=0.05)
    timed, clock = run([1.0, 2.0, 1.0, 2.0, 1.0, 1.5], p)
    assert len(timed.warmup) == 4 and timed.steps == [1.0, 1.5] and clock.calls == 6


def test_min_warmup_runs_even_when_steady_from_the_start():
    p = TimingProtocol(steps=1, min_warmup=3, max_warmup=5, window=2, tolerance=0.1)
    timed, _ = run([1.0] * 4, p)
    assert len(timed.warmup) == 3 and len(timed.steps) == 1
    fixed = TimingProtocol(steps=2, min_warmup=0, max_warmup=0)
    timed, _ = run([5.0, 1.0], fixed)
    assert timed.warmup == [] and timed.steps == [5.0, 1.0]


def test_steady_rule_edges():
    p = TimingProtocol(min_warmup=1, max_warmup=5, window=3, tolerance=0.10)
    assert not steady([1.0, 1.0], p)  # fewer than `window` readings
    assert steady([3.0, 1.0, 1.0625, 1.09375], p)  # within 10 %
    assert not steady([1.0, 1.0, 1.2], p)
    assert steady([1.0, 2.0, 1.0, 2.0, 1.0], p)  # the cap


def test_rounds_interleave_every_model_before_any_repeats():
    p = TimingProtocol(rounds=3)
    seen = []
    runs = interleave(4, p, lambda i, rnd: seen.append((rnd, i)) or (i, rnd))
    assert [rnd for rnd, _ in seen] == [0] * 4 + [1] * 4 + [2] * 4
    assert [i for _, i in seen[:4]] == [0, 1, 2, 3]  # the first round in the given order
    for rnd in (1, 2):
        assert sorted(i for r, i in seen if r == rnd) == [0, 1, 2, 3]
    assert runs[2] == [(2, 0), (2, 1), (2, 2)]
    # later rounds are shuffled, deterministically; shuffle=False keeps the order
    assert round_order(8, 1, p) == round_order(8, 1, p) != list(range(8))
    assert round_order(8, 1, TimingProtocol(shuffle=False)) == list(range(8))


def test_statistic_of_the_rounds():
    assert combine([3.0, 1.0, 2.0], TimingProtocol(statistic="min")) == 1.0
    assert combine([3.0, 1.0, 2.0, 10.0], TimingProtocol(statistic="median")) == 2.5


@pytest.mark.parametrize(
    "kwargs, match",
    [({"steps": 0}, "steps"), ({"rounds": 0}, "rounds"), ({"min_warmup": 3, "max_warmup": 2},
     "warm-up"), ({"window": 0}, "window"), ({"statistic": "mean"}, "statistic")],
)  # fmt: skip
def test_bad_protocols_are_refused(kwargs, match):
    with pytest.raises(TimingProtocolError, match=match):
        TimingProtocol(**kwargs)


def test_time_models_on_real_steps_follows_the_protocol(tiny_spec):
    p = TimingProtocol(steps=2, rounds=3, min_warmup=1, max_warmup=2)
    order = []
    specs = [tiny_spec, tiny_spec.with_resolution(16)]
    timed, load = time_models(
        specs, p, batch_size=2, threads=1, clock="cpu",
        progress=lambda i, rnd, r: order.append((rnd, i, r)),
    )  # fmt: skip
    assert [(rnd, i) for rnd, i, _ in order][:2] == [(0, 0), (0, 1)]
    assert [rnd for rnd, _, _ in order] == [0, 0, 1, 1, 2, 2]
    for i, r in enumerate(timed):
        rounds = [rec["seconds_per_batch"] for rnd, j, rec in order if j == i]
        assert r["rounds"] == rounds and r["seconds_per_batch"] == min(rounds)
        assert r["seconds_per_image"] == r["seconds_per_batch"] / 2
        assert 1 <= len(r["warmup_times"]) <= 2 and len(r["times"]) == 2
        assert r["protocol"] == p.to_dict() and r["resolution"] == specs[i].resolution
    assert load["cpus"] >= 1 and load["threads"] == 1 and isinstance(load["busy"], bool)


def test_load_report_says_busy_from_the_share_or_the_load():
    quiet = load_report(LoadSample(0.0, 0.0, 0.0), LoadSample(0.0, 10.0, 9.5), threads=1)
    assert not quiet["busy"] and quiet["cpu_share"] == pytest.approx(0.95)
    assert load_line(quiet).startswith("machine quiet while measuring")
    starved = load_report(LoadSample(0.0, 0.0, 0.0), LoadSample(0.0, 10.0, 5.0), threads=1)
    assert starved["busy"] and "50%" in load_line(starved)
    crowded = load_report(LoadSample(99.0, 0.0, 0.0), LoadSample(99.0, 1.0, 1.0), threads=1)
    assert crowded["busy"] and "load 99.0 -> 99.0" in load_line(crowded)
    assert DEFAULT.max_steps() == DEFAULT.max_warmup + DEFAULT.steps
