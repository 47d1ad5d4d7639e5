"""Early stopping for searches: Ray Tune's ASHA, or an Optuna pruner for Optuna samplers.

A study is defined with one `EarlyStop` (stored in its definition, so a resume stops the
same way). The default stops nothing: every candidate trains all its epochs, as the paper's
search does. With `asha` a Tune ASHAScheduler judges each trial at rungs of epochs
(grace, grace*rf, grace*rf^2, ... below the last epoch) by its validation error; with an
Optuna pruner (TPE only: Optuna prunes single-objective studies) each epoch's validation
error is reported to the candidate's Optuna trial and the trial stops when the pruner says
so, and the Optuna trial is told PRUNED.

A candidate is never stopped at its last epoch (it is finishing anyway; stopping it would
only lose its full result). A stopped candidate is final (docs/studies.md: status
`stopped`): its error is its validation error at the epoch it was stopped, not a fully
trained error. Schedulers note whom they stopped (`stopped`: Tune trial id -> label) so the
driver can tell a stop from a crash.

Importing this module imports neither ray nor optuna (the CLI validates options with it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from trials.study.store import StudyError

# --scheduler names; their Tune schedulers are built from the table in trials.study.schedulers
SCHEDULERS = ("fifo", "asha")
DEFAULT_GRACE = 1  # epochs before a candidate is first judged
DEFAULT_REDUCTION = 3  # keep the best 1/3 at each rung (Hyperband's eta)
MAX_REDUCTION = 1000
LABELS = {
    "asha": "ASHA",
    "median": "the median pruner",
    "hyperband": "the Hyperband pruner",
    "successive-halving": "the successive-halving pruner",
}


@dataclass(frozen=True)
class EarlyStop:
    """How a study stops candidates early: a Tune scheduler or an Optuna pruner, not both."""

    scheduler: str = "fifo"
    pruner: str = "none"
    grace_epochs: int | None = None
    reduction_factor: int | None = None

    @property
    def active(self) -> bool:
        return self.scheduler != "fifo" or self.pruner != "none"

    @property
    def name(self) -> str:
        """What stops candidates: 'asha', a pruner's name, or 'fifo' (nothing)."""
        return self.pruner if self.pruner != "none" else self.scheduler

    @property
    def grace(self) -> int:
        return self.grace_epochs or DEFAULT_GRACE

    @property
    def reduction(self) -> int:
        return self.reduction_factor or DEFAULT_REDUCTION

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """'asha (grace 1, reduction 3)', 'median (grace 2)' or 'fifo'."""
        if not self.active:
            return "fifo"
        parts = [f"grace {self.grace}"]
        if self.reduction_factor:
            parts.append(f"reduction {self.reduction_factor}")
        return f"{self.name} ({', '.join(parts)})"

    @classmethod
    def from_dict(cls, data: dict | None) -> EarlyStop:
        """The stored settings; a study made before early stopping existed stops nothing."""
        data = data or {}
        return cls(
            data.get("scheduler") or "fifo",
            data.get("pruner") or "none",
            data.get("grace_epochs"),
            data.get("reduction_factor"),
        )


def checked(stop: EarlyStop, *, epochs: float, sampler: str | None = None) -> EarlyStop:
    """`settings` of an EarlyStop built elsewhere (API, resume): the same checks."""
    return settings(**stop.to_dict(), epochs=epochs, sampler=sampler)


def label(name: str | None) -> str:
    """'ASHA', 'the median pruner', or an API pruner's class name."""
    return LABELS.get(str(name), str(name))


def settings(
    scheduler: str | None = None,
    pruner: str | None = None,
    grace_epochs: int | None = None,
    reduction_factor: int | None = None,
    *,
    epochs: float,
    sampler: str | None = None,
) -> EarlyStop:
    """Validated settings from options (None: default); one line naming what is allowed."""
    scheduler, pruner = scheduler or "fifo", pruner or "none"
    if scheduler not in SCHEDULERS:
        raise StudyError(f"--scheduler {scheduler!r} is unknown; allowed: {', '.join(SCHEDULERS)}")
    if not isinstance(pruner, str):  # an Optuna pruner object (Python API): its class name
        pruner = type(pruner).__name__
    elif pruner not in PRUNERS:
        raise StudyError(f"--pruner {pruner!r} is unknown; allowed: {', '.join(PRUNERS)}")
    if scheduler != "fifo" and pruner != "none":
        raise StudyError("use either --scheduler asha or --pruner, not both (one stops trials)")
    if pruner != "none" and sampler != "tpe":
        raise StudyError(
            f"--pruner {pruner} needs --sampler tpe (Optuna prunes single-objective studies; "
            f"this study's sampler is {sampler or 'a spec file'}); use --scheduler asha instead"
        )
    stop = EarlyStop(scheduler, pruner, grace_epochs, reduction_factor)
    if not stop.active:
        for flag, value in (
            ("--grace-epochs", grace_epochs),
            ("--reduction-factor", reduction_factor),
        ):
            if value is not None:
                raise StudyError(f"{flag} applies with --scheduler asha or a --pruner")
        return stop
    if pruner == "median" and reduction_factor is not None:
        raise StudyError("--reduction-factor applies to asha, hyperband and successive-halving")
    if not isinstance(stop.grace, int) or stop.grace < 1:
        raise StudyError(f"--grace-epochs must be >= 1, got {stop.grace}")
    if not isinstance(stop.reduction, int) or not 2 <= stop.reduction <= MAX_REDUCTION:
        raise StudyError(f"--reduction-factor must be in 2..{MAX_REDUCTION}, got {stop.reduction}")
    if stop.grace >= epochs:
        raise StudyError(
            f"--grace-epochs {stop.grace} must be below --epochs {epochs}: a candidate is "
            "judged after its grace epochs and before its last"
        )
    return EarlyStop(scheduler, pruner, stop.grace, None if pruner == "median" else stop.reduction)


def judged(result: dict, epochs: int) -> bool:
    """A per-epoch result a scheduler may stop on: not the final report, not the last epoch
    (the trial is finishing), and with a finite validation error."""
    if "epoch" not in result or result.get("final"):
        return False
    value = result.get("val_error")
    return int(result["epoch"]) < epochs and value is not None and math.isfinite(float(value))


def _median(stop: EarlyStop, epochs: int):
    import optuna

    # judged from epoch `grace` on (the earliest step it prunes at is n_warmup_steps), once
    # 5 trials (Optuna's default n_startup_trials) have finished
    return optuna.pruners.MedianPruner(n_warmup_steps=stop.grace)


def _hyperband(stop: EarlyStop, epochs: int):
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=stop.grace, max_resource=math.ceil(epochs), reduction_factor=stop.reduction
    )


def _successive_halving(stop: EarlyStop, epochs: int):
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=stop.grace, reduction_factor=stop.reduction
    )


# The one table of --pruner names: name -> factory(stop, epochs) of its Optuna pruner.
PRUNER_FACTORIES = {
    "none": None,
    "median": _median,
    "hyperband": _hyperband,
    "successive-halving": _successive_halving,
}
PRUNERS = tuple(PRUNER_FACTORIES)


def optuna_pruner(stop: EarlyStop, epochs: int, given=None):
    """The Optuna pruner of the settings (steps are epochs, 1-based); `given`: an Optuna
    pruner object passed through the Python API, whose class name the settings hold."""
    if stop.pruner not in PRUNER_FACTORIES:
        if given is None or type(given).__name__ != stop.pruner:
            raise StudyError(
                f"this study prunes with an Optuna {stop.pruner} given through the Python API; "
                "resume it there with the same pruner"
            )
        return given
    factory = PRUNER_FACTORIES[stop.pruner]
    return factory(stop, epochs) if factory else None
