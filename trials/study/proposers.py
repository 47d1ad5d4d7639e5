"""What decides which candidate trains next: a proposer (the contract every search follows).

The driver (trials.study.runner.drive) asks `next()` for a candidate key whenever a trial
slot is free; `None` means "nothing now, ask again when a trial ends", `FINISHED` that the
study is complete. `done(key, record)` is told each attempt's end. `total` and
`finished_count()` feed the progress view; `has_work()` says whether anything is queued.
`KeyProposer` runs a fixed list; trials.study.search's `OptunaProposer` asks an Optuna sampler.
"""

from __future__ import annotations

import collections

from trials.study.store import StudyStore

FINISHED = "FINISHED"


class KeyProposer:
    """A fixed list of candidates: runs each until done, stopped early or out of attempts."""

    def __init__(self, store: StudyStore, keys: list[str], max_failures: int):
        self.store, self.max_failures = store, max_failures
        self.keys = list(dict.fromkeys(keys))
        self.queue = collections.deque(
            k for k in self.keys if not store.is_finished(k, max_failures)
        )
        self.active: set[str] = set()

    @property
    def total(self) -> int:
        return len(self.keys)

    def finished_count(self) -> int:
        return sum(self.store.is_finished(k, self.max_failures) for k in self.keys)

    def has_work(self) -> bool:
        return bool(self.queue)

    def next(self):
        if self.queue:
            key = self.queue.popleft()
            self.active.add(key)
            return key
        return None if self.active else FINISHED

    def done(self, key: str, record: dict) -> None:
        self.active.discard(key)
        if not self.store.is_finished(key, self.max_failures):
            self.queue.append(key)
