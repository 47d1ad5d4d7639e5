"""Where a search study's candidates come from: the regime sampler, or Optuna.

Random search (the paper): the sampler's N in-regime models, fixed by the seed.
Guided search: Optuna suggests (d, w0, wa, wm, g); only ~0.1 % of the design space falls in
a 1 %-wide regime, so a suggestion is projected onto the nearest member of a seeded pool of
in-regime models (the pool is the regime, drawn densely) and that member is trained. The
projection is a fixed function, so the sampler still sees a well-defined objective; repeated
members are answered from the store without training. TPE minimises validation error;
NSGA-II minimises (validation error, measured epoch time).
"""

from __future__ import annotations

import collections
import dataclasses
from urllib.parse import urlsplit

import numpy as np

from spaces.errors import FastscaleError
from spaces.io import first_line
from spaces.sampler import sample
from spaces.space_file import resolve_space
from spaces.units import format_quantity
from trials.data.catalogue import dataset_info
from trials.study.checkpoint_storage import redact
from trials.study.definition import StudyDefinition
from trials.study.proposers import FINISHED
from trials.study.store import Candidate, StudyError, StudyStore

OPTUNA_STUDY = "fastscale"


def check_storage(url: str) -> None:
    """Refuse, in one line and before a study is created (and bound to it), an Optuna storage
    URL that does not parse, names a database driver that is not installed, or cannot be
    connected to."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    secret = urlsplit(url).password if "://" in url else None
    shown = redact(url)  # never print a password
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except Exception as exc:  # noqa: BLE001 - ArgumentError, NoSuchModuleError, ImportError
        raise StudyError(
            f"--storage {shown!r} is not a usable database URL ({_first(exc, secret)}); "
            "e.g. sqlite:////abs/path/optuna.db or postgresql://user@host/db"
        ) from None
    try:
        engine = sqlalchemy.create_engine(parsed)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any driver's connection error
        raise StudyError(f"cannot connect to --storage {shown!r}: {_first(exc, secret)}") from None


def _first(exc: BaseException, secret: str | None = None) -> str:
    text = first_line(exc)
    return text.replace(secret, "***") if secret else text


def design_space(definition: StudyDefinition):
    """The RegNet space at the study's resolution, classes and channels (the trained model)."""

    train = definition.train
    info = dataset_info(train.get("dataset") or "fashion-mnist", check=False)
    fixed = {"in_channels": info.channels}
    if info.classes is not None:
        fixed["num_classes"] = info.classes
    res = int(train.get("resolution") or 224)
    _, space, _ = resolve_space(definition.space)
    return dataclasses.replace(space, resolution=res, fixed={**space.fixed, **fixed})


def search_tags(definition: StudyDefinition) -> dict:
    return {
        "method": "search",
        "space": resolve_space(definition.space)[0],
        "regime": format_quantity(definition.regime, "F"),
        "sampler": definition.sampler,
    }


def random_candidates(definition: StudyDefinition) -> list[Candidate]:
    drawn = sample(
        design_space(definition),
        definition.regime,
        n=definition.n,
        tolerance=definition.tolerance,
        seed=definition.seed,
    )
    tags = search_tags(definition)
    return [Candidate(d["spec"], tags) for d in drawn]


def _tpe(seed: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _nsga2(seed: int):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


# The one table of --sampler names: name -> (factory(seed) of its Optuna sampler, the
# directions it optimises). `random` draws the regime's fixed sample and needs no Optuna.
SAMPLER_TABLE = {
    "random": (None, []),
    "tpe": (_tpe, ["minimize"]),  # error
    "nsga2": (_nsga2, ["minimize", "minimize"]),  # error and epoch time
}
SAMPLERS = tuple(SAMPLER_TABLE)


def make_sampler(kind: str, seed: int):
    """The Optuna sampler of an Optuna-sampled study and its directions."""
    factory, directions = SAMPLER_TABLE.get(kind, (None, []))
    if factory is None:
        raise FastscaleError(
            f"unknown sampler {kind!r}; allowed: {', '.join(k for k, v in SAMPLER_TABLE.items() if v[0])}"
        )
    return factory(seed), directions


class RegimePool:
    """Seeded in-regime models and their normalised (d, w0, wa, wm, g) coordinates."""

    PARAMS = ("depth", "w0", "wa", "wm", "group_width")

    def __init__(self, definition: StudyDefinition, size: int):
        self.space = design_space(definition)
        drawn = sample(
            self.space,
            definition.regime,
            n=size,
            tolerance=definition.tolerance,
            seed=definition.seed + 7919,  # not the random-search draw itself
        )
        self.specs = [d["spec"] for d in drawn]
        self.ranges = {
            "depth": self.space.depth,
            "w0": self.space.w0,
            "wa": self.space.wa,
            "wm": self.space.wm,
            "group_width": self.space.group_width,
        }
        self.coords = np.array(
            [self.normalize({p: getattr(s, p) for p in self.PARAMS}) for s in self.specs]
        )

    def normalize(self, params: dict) -> np.ndarray:
        out = []
        for p in self.PARAMS:
            r, v = self.ranges[p], float(params[p])
            if r.log:
                out.append((np.log(v) - np.log(r.low)) / (np.log(r.high) - np.log(r.low)))
            else:
                out.append((v - r.low) / (r.high - r.low))
        return np.array(out)

    def suggest(self, trial) -> dict:
        params = {}
        for p in self.PARAMS:
            r = self.ranges[p]
            if p in ("depth", "w0", "group_width"):
                params[p] = trial.suggest_int(p, int(r.low), int(r.high), log=r.log)
            else:
                params[p] = trial.suggest_float(p, float(r.low), float(r.high), log=r.log)
        return params

    def nearest(self, params: dict):
        d = np.linalg.norm(self.coords - self.normalize(params), axis=1)
        return self.specs[int(np.argmin(d))]


def pool_size(n: int) -> int:
    return min(2048, max(256, 16 * n))


class OptunaProposer:
    """Asks Optuna for candidates until `n` distinct ones are finished; resumable from SQLite.

    Each Optuna trial carries user attr `key`; a trial asked but never told (driver killed)
    is picked up again on resume and told once its candidate finishes.
    """

    def __init__(
        self,
        store: StudyStore,
        definition: StudyDefinition,
        train: dict,
        max_failures: int,
        storage: str,
        pool: RegimePool | None = None,
        pruner=None,
    ):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.store, self.train, self.max_failures = store, train, max_failures
        self.n = int(definition.n)
        self.kind = definition.sampler
        self.tags = search_tags(definition)
        sampler, directions = make_sampler(self.kind, int(definition.seed))
        self.study = optuna.create_study(
            study_name=definition.optuna_study or OPTUNA_STUDY,
            storage=storage,
            load_if_exists=True,
            sampler=sampler,
            pruner=pruner,  # trials.study.early_stop: asked through optuna_trials
            directions=directions,
        )
        self.pool = pool or RegimePool(definition, size=pool_size(self.n))
        self.waiting: dict[str, list[int]] = collections.defaultdict(list)
        self.asked: dict[int, object] = {}  # number -> optuna Trial, to report epochs to
        self.finished: set[str] = set()
        self.queue: collections.deque[str] = collections.deque()
        self.active: set[str] = set()
        self.asks = 0
        self.max_asks = 50 * self.n + 200
        states = optuna.trial.TrialState
        for t in self.study.get_trials(deepcopy=False):
            key = t.user_attrs.get("key")
            if t.state == states.RUNNING:
                if key is None:
                    self.study.tell(t.number, state=states.FAIL, skip_if_finished=True)
                    continue
                self.waiting[key].append(t.number)
                self.asked[t.number] = optuna.trial.Trial(self.study, t._trial_id)
            elif key is not None:
                self.finished.add(key)
        for key in list(self.waiting):
            if store.is_finished(key, max_failures):
                self._tell(key)
            elif key not in self.queue:
                self.queue.append(key)

    @property
    def total(self) -> int:
        return self.n

    def finished_count(self) -> int:
        return len(self.finished)

    def has_work(self) -> bool:
        return bool(self.queue) or (len(self.finished) < self.n and self.asks < self.max_asks)

    def optuna_trials(self, key: str) -> list:
        """The Optuna trials waiting on this candidate (a pruner judges the first)."""
        return [self.asked[n] for n in self.waiting.get(key, []) if n in self.asked]

    def _tell(self, key: str) -> None:
        import optuna

        states = optuna.trial.TrialState
        rec = self.store.status(key)
        for number in self.waiting.pop(key, []):
            self.asked.pop(number, None)
            if rec["status"] == "done":
                values = [rec["error"]] if self.kind == "tpe" else [rec["error"], rec["epoch_time"]]
                self.study.tell(number, values, skip_if_finished=True)
            else:  # stopped early: pruned (its last reported epoch is its value), else failed
                state = states.PRUNED if rec["status"] == "stopped" else states.FAIL
                self.study.tell(number, state=state, skip_if_finished=True)
        self.finished.add(key)

    def next(self):
        if self.queue:
            key = self.queue.popleft()
            self.active.add(key)
            return key
        while len(self.finished) + len(self.active) < self.n and self.asks < self.max_asks:
            self.asks += 1
            trial = self.study.ask()
            spec = self.pool.nearest(self.pool.suggest(trial))
            key = self.store.add(spec, self.train, self.tags)
            trial.set_user_attr("key", key)
            self.waiting[key].append(trial.number)
            self.asked[trial.number] = trial
            if self.store.is_finished(key, self.max_failures):
                self._tell(key)  # a repeat of a trained model: answered for free
                continue
            if key in self.active:
                continue  # told when the running one ends
            self.active.add(key)
            return key
        return None if self.active else FINISHED

    def done(self, key: str, record: dict) -> None:
        self.active.discard(key)
        if self.store.is_finished(key, self.max_failures):
            self._tell(key)
        else:
            self.queue.append(key)
