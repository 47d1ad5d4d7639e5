"""A study's definition from command-line options, and resuming it safely.

A new directory takes the options as its definition. An existing one is resumed: options
left out take the stored values, and an option that differs from the stored one is refused
with the option, both values and no change on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from spaces.io import load_specs
from spaces.safe_write import OutputError, check_output_dir
from spaces.space_file import resolve_space
from spaces.specs import spec_from_dict
from spaces.units import format_quantity
from trials.study import early_stop
from trials.study.checkpoint_storage import check_writable, redact, storage_location
from trials.study.checks import (
    PARALLEL_DEFAULTS,
    check_dataset,
    check_parallel_trial,
    check_split,
    check_trial_resources,
    trial_resources,
)
from trials.study.damage import usable_keys
from trials.study.definition import StudyDefinition
from trials.study.proposers import KeyProposer
from trials.study.records import recover
from trials.study.runner import drive, normalize_train, probe, ray_session
from trials.study.search import (
    SAMPLERS,
    OptunaProposer,
    RegimePool,
    check_storage,
    pool_size,
    random_candidates,
)
from trials.study.store import Candidate, StudyError, StudyStore, canonical
from trials.training.recipe import TrainConfig

# option -> where it lives in the definition
TOP = ("space", "regime", "n", "tolerance", "seed", "sampler", "storage")
TRAIN = ("dataset", "resolution", "epochs", "train_size", "val_size", "batch_size", "base_lr")
DEFAULTS = {"n": 32, "tolerance": 0.01, "seed": 0, "sampler": "random", "dataset": "fashion-mnist"}
SEARCH_RESOLUTION = 32  # default for a search (CPU-sized); --specs keep each spec's own
STORAGE_ENV = "FASTSCALE_OPTUNA_STORAGE"  # the full --storage URL when it has a password
# early stopping (trials.study.early_stop), stored as definition["early_stop"]
EARLY_STOP = ("scheduler", "pruner", "grace_epochs", "reduction_factor")
RUN_DEFAULTS = {
    "cpus_per_trial": 1,
    "gpus_per_trial": 0,
    "max_failures": 1,
    "progress": True,
    **PARALLEL_DEFAULTS,
}


def _show(option: str, value) -> str:
    if option == "space" and isinstance(value, dict):
        return f"{value.get('name')} (a design-space file)"
    if option == "regime" and isinstance(value, int | float):
        return re.sub(r"\.?0+(?=[KMGT]?F$)", "", format_quantity(value, "F", digits=3))
    return str(value)


def _train_dict(opts: dict, seed: int, search: bool) -> dict:
    changes = {k: opts[k] for k in TRAIN if opts.get(k) is not None}
    if search:
        changes.setdefault("resolution", SEARCH_RESOLUTION)
    return normalize_train(TrainConfig(seed=seed, **changes).to_dict())


def _load_specs(path: str) -> list[dict]:
    return [s.to_dict() for s in load_specs(path)]


def build_definition(opts: dict, out_dir: Path) -> StudyDefinition:
    """A new study's definition; validates the options before anything is written."""
    specs = opts.get("specs")
    if specs and (opts.get("space") or opts.get("regime")):
        raise StudyError("use either --specs FILE or --space/--regime, not both")
    d = {k: opts[k] if opts.get(k) is not None else DEFAULTS.get(k) for k in TOP}
    if specs:
        if d["sampler"] != "random":
            raise StudyError("--sampler tpe|nsga2 searches a space; it does not apply to --specs")
        spec_dicts = _load_specs(specs)
        d.update(source="specs", specs=spec_dicts, specs_file=str(Path(specs).resolve()))
        d["n"] = len(spec_dicts)
    else:
        missing = [f"--{k}" for k in ("space", "regime") if not opts.get(k)]
        if missing:
            raise StudyError(f"a new study needs {' and '.join(missing)} (or --specs FILE)")
        d["source"] = "search"
        d["space"] = resolve_space(d["space"])[2]  # a file's content, not its path
        if d["sampler"] not in SAMPLERS:
            raise StudyError(f"unknown sampler {d['sampler']!r}; allowed: {', '.join(SAMPLERS)}")
    if d["sampler"] == "random" and d.get("storage"):
        raise StudyError("--storage holds an Optuna study; use it with --sampler tpe|nsga2")
    if d.get("storage"):
        d["storage"] = redact(d["storage"])  # a password is never stored (storage_url)
    if d["sampler"] != "random":
        tag = hashlib.sha256(canonical([str(out_dir), d["space"], d["regime"]]).encode())
        d["optuna_study"] = f"fastscale-{Path(out_dir).name}-{tag.hexdigest()[:8]}"
    d["train"] = _train_dict(opts, int(d["seed"]), search=not specs)
    d["early_stop"] = _early_stop(opts, d).to_dict()
    return StudyDefinition.from_dict(d, "the study's options")


def _early_stop(opts: dict, d: dict) -> early_stop.EarlyStop:
    sampler = d["sampler"] if d["source"] == "search" else None
    given = [opts.get(k) for k in EARLY_STOP]
    return early_stop.settings(*given, epochs=d["train"]["epochs"], sampler=sampler)


def _reconcile_early_stop(stored: dict, opts: dict, out_dir: Path) -> None:
    """A resume stops candidates the way the study was defined; a differing flag is refused."""
    # from_dict fills the defaults (fifo, none): an unset grace or reduction stays None
    have = early_stop.EarlyStop.from_dict(stored.early_stop).to_dict()
    for k in EARLY_STOP:
        given = opts.get(k)
        if given is not None and not isinstance(given, str | int):
            given = type(given).__name__  # an Optuna pruner object (Python API)
        if given is not None and given != have[k]:
            flag = "--" + k.replace("_", "-")
            raise StudyError(
                f"{flag} {given} conflicts with the study in {out_dir} (stored: {have[k]}); "
                "leave it out to resume, or use a new --out"
            )


def reconcile(data: dict, opts: dict, out_dir: Path) -> StudyDefinition:
    """The stored definition, after checking every given option agrees with it."""
    if not isinstance(data, dict) or data.get("source") not in ("search", "specs"):
        raise StudyError(
            f"{out_dir} holds a study made through the Python API (run_study); "
            "`study run` can only resume studies it created"
        )
    stored = StudyDefinition.from_dict(data, f"{out_dir / 'study.json'} definition")
    for k in TOP:
        given, have = opts.get(k), getattr(stored, k)
        if k == "storage" and given is not None:
            given = redact(given)
        if k == "space" and given is not None:
            given = resolve_space(given)[2]
            if isinstance(given, dict) and isinstance(have, dict) and given != have:
                raise StudyError(
                    f"--space {opts[k]} holds other ranges than the design space stored in the "
                    f"study in {out_dir} ({have.get('name')}); leave it out to resume, or use a "
                    "new --out"
                )
        if given is not None and given != have:
            flag = "-n" if k == "n" else f"--{k}"
            raise StudyError(
                f"{flag} {_show(k, given)} conflicts with the study in {out_dir} "
                f"(stored: {_show(k, have)}); leave it out to resume, or use a new --out"
            )
    train = stored.train
    for k in TRAIN:
        given = opts.get(k)
        if given is not None and given != train.get(k):
            flag = "--" + k.replace("_", "-")
            raise StudyError(
                f"{flag} {given} conflicts with the study in {out_dir} (stored: "
                f"{train.get(k)}); leave it out to resume, or use a new --out"
            )
    if opts.get("specs"):
        if stored.source != "specs" or _load_specs(opts["specs"]) != stored.specs:
            raise StudyError(
                f"--specs {opts['specs']} does not hold the specs of the study in {out_dir}; "
                "leave it out to resume, or use a new --out"
            )
    if (opts.get("space") or opts.get("regime")) and stored.source == "specs":
        raise StudyError(f"the study in {out_dir} trains a spec file; --space/--regime conflict")
    _reconcile_early_stop(stored, opts, out_dir)
    return stored


def storage_url(d: StudyDefinition, opts: dict) -> str | None:
    """The Optuna storage URL of this run: the stored one, or — when the stored one was
    redacted (it had a password) — the full URL restated with --storage or taken from
    $FASTSCALE_OPTUNA_STORAGE, which must match it."""
    stored = d.storage
    if not stored or "***" not in stored:
        return stored
    given = opts.get("storage") or os.environ.get(STORAGE_ENV)
    if not given:
        raise StudyError(
            f"the study's --storage {stored} needs its password, which is never stored; "
            f"restate --storage or set {STORAGE_ENV} to the full URL"
        )
    if redact(given) != stored:
        raise StudyError(f"{STORAGE_ENV} or --storage does not match the study's {stored}")
    return given


def open_study(out_dir: str | Path, opts: dict) -> tuple[StudyStore, StudyDefinition, bool]:
    """(store, definition, created). Nothing is written when the options are refused."""
    store = StudyStore(out_dir)
    root = store.root
    if store.exists() or not store.is_blank():
        return store, reconcile(store.check(), opts, root), False
    definition = build_definition(opts, root)
    return store, definition, True


def _sources(d: StudyDefinition):
    """(candidates, None) for a fixed list, (None, pool) for an Optuna search."""

    if d.source == "specs":
        name = Path(d.specs_file or "specs").name
        tags = {"method": "specs", "source": name}
        return [Candidate(spec_from_dict(s), tags) for s in d.specs], None
    if d.sampler == "random":
        return random_candidates(d), None  # a regime that cannot be filled fails before mkdir
    return None, RegimePool(d, size=pool_size(d.n))


def _pruner_object(opts: dict):
    """An Optuna pruner object given as opts["pruner"] through the Python API, else None."""
    pruner = opts.get("pruner")
    return None if isinstance(pruner, str | None) else pruner


def preflight(
    store: StudyStore, d: StudyDefinition, opts: dict, run: dict, address: str | None
) -> None:
    """Every check that needs no Ray, before anything is created or Ray starts."""
    try:  # --out: a directory (or to be one) this driver can write
        check_output_dir(store.root, "--out")
    except OutputError as exc:
        raise StudyError(str(exc)) from None
    stop = early_stop.EarlyStop.from_dict(d.early_stop)
    if stop.pruner not in early_stop.PRUNERS:  # an API pruner object: the same one again
        early_stop.optuna_pruner(stop, d.train["epochs"], _pruner_object(opts))
    if run["max_failures"] < 1:
        raise StudyError(f"--max-failures must be >= 1, got {run['max_failures']}")
    check_trial_resources(run["cpus_per_trial"], run["gpus_per_trial"])
    check_parallel_trial(run)
    check_split(d.train, run)
    check_dataset(d.train)
    if d.sampler != "random" and storage_url(d, opts):
        check_storage(storage_url(d, opts))
    if run.get("checkpoint_storage"):
        check_writable(storage_location(run["checkpoint_storage"], store.root))
    if address:
        probe(address)


def run_defined(
    out_dir: str | Path, opts: dict, *, address: str | None = None, **run
) -> StudyStore:
    """`fastscale study run`: create or resume the study in out_dir and run it to the end.

    `run`: cpus_per_trial, gpus_per_trial, max_failures, progress, time_batch,
    checkpoint_storage, keep_weights (runner.execute). Every option is checked before
    anything is written or Ray starts; a new study is created under its lock.
    `opts["pruner"]` may also be an Optuna pruner object (Python API; the definition keeps
    its class name and a resume must pass the same kind again).
    """
    run = {**RUN_DEFAULTS, **run}
    store, d, created = open_study(out_dir, opts)
    preflight(store, d, opts, run, address)
    if created:  # torch threads change a CPU run's result: fixed by the definition
        per_process = (
            run["cpus_per_trial"] if run["workers_per_trial"] == 1 else run["cpus_per_worker"]
        )
        d = d.replace(train={**d.train, "threads": max(1, round(per_process))})
    candidates, pool = _sources(d)
    with contextlib.ExitStack() as stack:
        if created:  # Ray first (it may refuse the resources), then the directory
            stack.enter_context(ray_session(address, *trial_resources(run)))
            stack.enter_context(store.lock(create=True))
            if store.exists():  # a racing driver created it first and has finished
                d = reconcile(store.check(), opts, store.root)
                candidates, pool = _sources(d)
            else:
                store.create(d.to_dict())
        else:  # a busy study is refused before Ray starts
            stack.enter_context(store.lock())
            stack.enter_context(ray_session(address, *trial_resources(run)))
        recover(store)
        stop = early_stop.EarlyStop.from_dict(d.early_stop)
        proposer = _proposer(store, d, opts, candidates, pool, run.pop("max_failures"), stop)
        from trials.study.schedulers import tune_scheduler  # ray

        scheduler = tune_scheduler(stop, d.train["epochs"], proposer)
        drive(store, proposer, address=address, scheduler=scheduler, **run)
    return store


def _proposer(
    store: StudyStore, d: StudyDefinition, opts: dict, candidates, pool, max_failures: int, stop
):
    """The fixed list's proposer, or the Optuna one (with the study's pruner, if any)."""
    if candidates is not None:
        keys = [store.add(c.spec, d.train, c.tags) for c in candidates]
        return KeyProposer(store, usable_keys(store, keys), max_failures)
    storage = storage_url(d, opts) or store.optuna_url
    pruner = early_stop.optuna_pruner(stop, d.train["epochs"], _pruner_object(opts))
    return OptunaProposer(store, d, d.train, max_failures, storage, pool, pruner)
