#!/usr/bin/env bash
# Set up fastscale on a fresh machine: Debian's Fashion-MNIST, a virtual environment in .venv,
# the CPU build of PyTorch when no GPU is present (so torch>=2.3 is already satisfied and pip
# does not pull a multi-GB CUDA build), then the project with its test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "setup: installing Debian's dataset-fashion-mnist" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v -i "^warning" || true
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: GPU found; torch comes from the requirements" >&2
  else
    echo "setup: no GPU; installing the CPU build torch==2.13.0" >&2
    .venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v -i "^warning" || true
  fi
fi
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v -i "warning\|^ *!!\|^ *\*\*\|^$" || true
.venv/bin/python -c "import spaces, planner, trials, torch, ray, optuna" \
  || { echo "setup: the environment is incomplete (see pip's output above)" >&2; exit 1; }
echo "setup: ready (.venv)" >&2
