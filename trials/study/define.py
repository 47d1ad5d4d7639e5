"""A study's definition from command-line options, and resuming it safely.

A new directory takes the options as its definition. An existing one is resumed: options
left out take the stored values, and an option that differs from the stored one is refused
with the option, both values and no change on disk.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from spaces.units import format_quantity
from trials.study.runner import KeyProposer, drive, normalize_train, probe
from trials.study.search import (
    SAMPLERS,
    OptunaProposer,
    RegimePool,
    check_storage,
    pool_size,
    random_candidates,
)
from trials.study.store import Candidate, StudyError, StudyStore, canonical

# option -> where it lives in the definition
TOP = ("space", "regime", "n", "tolerance", "seed", "sampler", "storage")
TRAIN = ("dataset", "resolution", "epochs", "train_size", "val_size", "batch_size", "base_lr")
DEFAULTS = {"n": 32, "tolerance": 0.01, "seed": 0, "sampler": "random", "dataset": "fashion-mnist"}
SEARCH_RESOLUTION = 32  # default for a search (CPU-sized); --specs keep each spec's own


def _show(option: str, value) -> str:
    if option == "regime" and isinstance(value, int | float):
        return re.sub(r"\.?0+(?=[KMGT]?F$)", "", format_quantity(value, "F", digits=3))
    return str(value)


def _train_dict(opts: dict, seed: int, search: bool) -> dict:
    from trials.recipe import TrainConfig

    changes = {k: opts[k] for k in TRAIN if opts.get(k) is not None}
    if search:
        changes.setdefault("resolution", SEARCH_RESOLUTION)
    return normalize_train(TrainConfig(seed=seed, **changes).to_dict())


def _load_specs(path: str) -> list[dict]:
    from spaces.io import load_specs

    return [s.to_dict() for s in load_specs(path)]


def build_definition(opts: dict, out_dir: Path) -> dict:
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
        if d["sampler"] not in SAMPLERS:
            raise StudyError(f"unknown sampler {d['sampler']!r}; allowed: {', '.join(SAMPLERS)}")
    if d["sampler"] == "random" and d.get("storage"):
        raise StudyError("--storage holds an Optuna study; use it with --sampler tpe|nsga2")
    if d.get("storage"):
        check_storage(d["storage"])
    if d["sampler"] != "random":
        tag = hashlib.sha256(canonical([str(out_dir), d["space"], d["regime"]]).encode())
        d["optuna_study"] = f"fastscale-{Path(out_dir).name}-{tag.hexdigest()[:8]}"
    d["train"] = _train_dict(opts, int(d["seed"]), search=not specs)
    return d


def reconcile(stored: dict, opts: dict, out_dir: Path) -> dict:
    """The stored definition, after checking every given option agrees with it."""
    if "source" not in stored or stored["source"] not in ("search", "specs"):
        raise StudyError(
            f"{out_dir} holds a study made through the Python API (run_study); "
            "`study run` can only resume studies it created"
        )
    for k in TOP:
        given, have = opts.get(k), stored.get(k)
        if given is not None and given != have:
            raise StudyError(
                f"--{k} {_show(k, given)} conflicts with the study in {out_dir} "
                f"(stored: {_show(k, have)}); leave it out to resume, or use a new --out"
            )
    train = stored["train"]
    for k in TRAIN:
        given = opts.get(k)
        if given is not None and given != train.get(k):
            flag = "--" + k.replace("_", "-")
            raise StudyError(
                f"{flag} {given} conflicts with the study in {out_dir} (stored: "
                f"{train.get(k)}); leave it out to resume, or use a new --out"
            )
    if opts.get("specs"):
        if stored["source"] != "specs" or _load_specs(opts["specs"]) != stored.get("specs"):
            raise StudyError(
                f"--specs {opts['specs']} does not hold the specs of the study in {out_dir}; "
                "leave it out to resume, or use a new --out"
            )
    if (opts.get("space") or opts.get("regime")) and stored["source"] == "specs":
        raise StudyError(f"the study in {out_dir} trains a spec file; --space/--regime conflict")
    return stored


def open_study(out_dir: str | Path, opts: dict) -> tuple[StudyStore, dict, bool]:
    """(store, definition, created). Nothing is written when the options are refused."""
    store = StudyStore(out_dir)
    root = store.root
    if store.exists() or (root.is_dir() and any(root.iterdir())):
        return store, reconcile(store.check(), opts, root), False
    definition = build_definition(opts, root)
    return store, definition, True


def run_defined(
    out_dir: str | Path,
    opts: dict,
    *,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    address: str | None = None,
    max_failures: int = 1,
    progress: bool = True,
    time_batch: int | None = None,
) -> StudyStore:
    """`fastscale study run`: create or resume the study in out_dir and run it to the end."""
    from spaces.specs import spec_from_dict

    if max_failures < 1:
        raise StudyError(f"--max-failures must be >= 1, got {max_failures}")
    if address:
        probe(address)  # before anything is created
    store, d, created = open_study(out_dir, opts)
    candidates = pool = None
    if d["source"] == "specs":
        name = Path(d.get("specs_file", "specs")).name
        candidates = [
            Candidate(spec_from_dict(s), {"method": "specs", "source": name}) for s in d["specs"]
        ]
    elif d["sampler"] == "random":
        candidates = random_candidates(d)  # a regime that cannot be filled fails before mkdir
    else:
        pool = RegimePool(d, size=pool_size(int(d["n"])))
    if created:
        store.create(d)
    with store.lock():
        if candidates is not None:
            keys = [store.add(c.spec, d["train"], c.tags) for c in candidates]
            proposer = KeyProposer(store, keys, max_failures)
        else:
            storage = d.get("storage") or store.optuna_url
            proposer = OptunaProposer(store, d, d["train"], max_failures, storage, pool)
        drive(
            store,
            proposer,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            address=address,
            progress=progress,
            time_batch=time_batch,
        )
    return store
