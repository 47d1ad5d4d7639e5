#!/usr/bin/env bash
# Lint, format check and the whole test suite (real torch, Ray, Optuna, SQLite, Fashion-MNIST).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=disabled MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
# Whatever the outcome, leave no Ray processes behind (the fixtures stop their own clusters;
# this catches a driver killed mid-test).
trap '.venv/bin/ray stop --force >/dev/null 2>&1 || true' EXIT
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
