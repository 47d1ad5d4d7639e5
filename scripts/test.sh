#!/usr/bin/env bash
# Lint, format check and the whole test suite (real torch, Ray, Optuna, SQLite, Fashion-MNIST).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=disabled MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
# The optional features' tests (ONNX, MLflow) fail instead of skipping when their packages
# are missing: setup.sh installs them, so a skip here would hide a broken set-up.
export FASTSCALE_REQUIRE_EXTRAS=1
# Every Ray this run starts keeps its sessions in a private temp dir (short: Ray's socket
# paths must stay under 108 bytes). Whatever the outcome, stop exactly the processes tied
# to it (a driver killed mid-test leaves agents behind) — never `ray stop --force`, which
# kills every Ray cluster on the host, other users' included.
RAY_TMPDIR="$(mktemp -d /tmp/fsray-XXXXXX)"
export RAY_TMPDIR
trap '.venv/bin/python -m trials.study.ray_reap "$RAY_TMPDIR" --remove || true' EXIT
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
