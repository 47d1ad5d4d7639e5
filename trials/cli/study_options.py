"""The options of `fastscale study run|submit|repair`: those that define a study (stored in
study.json; a resume must agree with them) and those of one run (they may change)."""

from __future__ import annotations

import click

from spaces.sampler import SPACES
from trials.cli.common import QUANTITY, SEED, Finite
from trials.study.early_stop import MAX_REDUCTION, PRUNERS, SCHEDULERS
from trials.study.search import SAMPLERS
from trials.training.parallel import MAX_DATA_WORKERS, PLACEMENTS
from trials.training.recipe import MAX_BATCH, MAX_EPOCHS, MAX_RESOLUTION

MAX_CANDIDATES = 10_000  # models one study trains (the paper's searches train 32 per regime)

# Early stopping (trials.study.early_stop): part of the study's definition.
EARLY_STOP = [
    click.option(
        "--scheduler",
        type=click.Choice(SCHEDULERS),
        default=None,
        help="fifo: every candidate trains all its epochs (default); asha: Ray Tune's ASHA "
        "stops candidates whose validation error trails at rungs of epochs.",
    ),
    click.option(
        "--pruner",
        type=click.Choice(PRUNERS),
        default=None,
        help="With --sampler tpe: an Optuna pruner judges each epoch's validation error "
        "(default none).",
    ),
    click.option(
        "--grace-epochs",
        type=click.IntRange(min=1),
        default=None,
        help="Epochs before a candidate is first judged by asha or a pruner (1).",
    ),
    click.option(
        "--reduction-factor",
        type=click.IntRange(2, MAX_REDUCTION),
        default=None,
        help="asha, hyperband, successive-halving: keep the best 1/N at each rung (3).",
    ),
]

# The options that define a study (stored in study.json; a resume must agree with them).
DEFINING = [
    click.option(
        "--space",
        default=None,
        metavar="NAME|FILE",
        help=f"Design space to search: {', '.join(SPACES)}, or a design-space file (YAML/JSON, "
        "e.g. the refined_space.yaml of `fastscale analyze`; the study stores its content).",
    ),
    click.option(
        "--regime",
        type=QUANTITY,
        default=None,
        help="Target flops of the search, e.g. 20MF, 400MF, 4GF.",
    ),
    click.option(
        "-n",
        "n",
        type=click.IntRange(1, MAX_CANDIDATES),
        default=None,
        help="Number of candidates to train (default 32, the paper's).",
    ),
    click.option(
        "--tolerance",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=None,
        help="Regime window half-width, a fraction (default 0.01).",
    ),
    click.option(
        "--sampler",
        type=click.Choice(SAMPLERS),
        default=None,
        help="random: the regime sampler's N models (default); tpe/nsga2: Optuna.",
    ),
    click.option(
        "--storage", default=None, help="Optuna RDB URL (default sqlite:///DIR/optuna.db)."
    ),
    click.option(
        "--specs",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Train the specs of this JSON/YAML file instead of searching.",
    ),
    click.option("--seed", type=SEED, default=None, help="Seed of sampling and training (0)."),
    click.option(
        "--dataset",
        default=None,
        help="fashion-mnist (default) or an ImageFolder path (train/ and val/).",
    ),
    click.option(
        "--resolution",
        type=click.IntRange(8, MAX_RESOLUTION),
        default=None,
        help="Training resolution (search default 32; --specs: each spec's own).",
    ),
    click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=None, help="Epochs (1)."),
    click.option(
        "--train-size",
        type=click.IntRange(min=2),
        default=None,
        help="Seeded stratified subset of the training set.",
    ),
    click.option(
        "--val-size",
        type=click.IntRange(min=1),
        default=None,
        help="Seeded stratified subset of the validation set.",
    ),
    click.option(
        "--batch-size", type=click.IntRange(2, MAX_BATCH), default=None, help="Batch (128)."
    ),
    click.option(
        "--base-lr",
        type=Finite(min=0, min_open=True),
        default=None,
        help="Learning rate at batch 1024 (2.0), scaled linearly.",
    ),
    *EARLY_STOP,
]

# Options of one run of a study (not stored; they may change between resumes).
RUNNING = [
    click.option(
        "--max-failures",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Failed attempts allowed per candidate before it is recorded failed.",
    ),
    click.option(
        "--cpus-per-trial",
        type=Finite(min=0, min_open=True),
        default=1,
        show_default=True,
        help="CPUs per trial (also its torch threads).",
    ),
    click.option(
        "--gpus-per-trial",
        type=Finite(min=0),
        default=0,
        show_default=True,
        help="GPUs per trial; fractions share a GPU.",
    ),
    click.option(
        "--workers-per-trial",
        type=click.IntRange(1, MAX_DATA_WORKERS),
        default=1,
        show_default=True,
        help="Data-parallel workers per trial (one device each; the batch stays global). The "
        "trial's workers are placed as one placement group.",
    ),
    click.option(
        "--cpus-per-worker",
        type=Finite(min=0, min_open=True),
        default=1,
        show_default=True,
        help="With --workers-per-trial: CPUs per worker (also its torch threads).",
    ),
    click.option(
        "--gpus-per-worker",
        type=Finite(min=0),
        default=0,
        show_default=True,
        help="With --workers-per-trial: GPUs per worker (1 trains each worker on its own GPU).",
    ),
    click.option(
        "--placement",
        type=click.Choice(PLACEMENTS),
        default="PACK",
        show_default=True,
        help="With --workers-per-trial: PACK a trial's workers on few nodes, or SPREAD them.",
    ),
    click.option(
        "--time-batch",
        type=click.IntRange(min=1),
        default=None,
        help="Also time inference at this batch size (infer_time, s/image).",
    ),
    click.option(
        "--checkpoint-storage",
        default=None,
        help="Where trials' checkpoints go (Ray Tune's storage_path): a directory every node "
        "can reach, or a URI such as s3://bucket/prefix. Default: DIR/ray.",
    ),
    click.option(
        "--keep-weights",
        is_flag=True,
        default=False,
        help="Keep each finished candidate's final weights (weights.pt) in the checkpoint "
        "storage; by default a finished candidate keeps only its record.",
    ),
]
DEFINING_NAMES = (
    "space",
    "regime",
    "n",
    "tolerance",
    "sampler",
    "storage",
    "specs",
    "seed",
    "dataset",
    "resolution",
    "epochs",
    "train_size",
    "val_size",
    "batch_size",
    "base_lr",
    "scheduler",
    "pruner",
    "grace_epochs",
    "reduction_factor",
)
RUNNING_NAMES = (
    "max_failures",
    "cpus_per_trial",
    "gpus_per_trial",
    "workers_per_trial",
    "cpus_per_worker",
    "gpus_per_worker",
    "placement",
    "time_batch",
    "checkpoint_storage",
    "keep_weights",
)


def apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco
