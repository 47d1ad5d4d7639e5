#!/usr/bin/env bash
# Set up fastscale: Debian's Fashion-MNIST, a virtual environment in .venv, PyTorch (the CPU
# build when no GPU is present), then the project with its test tools.
#
# Idempotent and quiet: a re-run whose environment is complete and whose pyproject.toml is
# unchanged downloads nothing. pip and apt write to .venv/setup.log; the terminal gets a few
# `setup:` lines, and the log's tail only when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CPU_INDEX=https://download.pytorch.org/whl/cpu
PYTHON=${PYTHON:-python3}
LOG=.venv/setup.log
STAMP=.venv/.fastscale-setup
say() { echo "setup: $*" >&2; }
die() {
  say "$1 (last lines of $LOG below)"
  tail -n 25 "$LOG" >&2 || true
  exit 1
}

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  say "installing Debian's dataset-fashion-mnist (30 MB)"
  { $SUDO apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist; } \
    >/tmp/fastscale-apt.log 2>&1 \
    || { say "apt-get failed:"; tail -n 15 /tmp/fastscale-apt.log >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || { say "'$PYTHON -m venv' failed (Debian: apt-get install python3-venv)"; exit 1; }
fi
# No pip self-upgrade and no version check: the venv's own pip installs everything we need.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
PIP=(.venv/bin/python -m pip)
: >>"$LOG"

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
# Complete = the stamp of this pyproject.toml and every top-level package findable (found,
# not imported: importing torch and ray alone takes seconds on a busy machine).
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && .venv/bin/python -c "
import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ('spaces', 'planner', 'trials', 'torch', 'ray', 'optuna', 'onnx', 'onnxruntime', 'mlflow')))
" 2>/dev/null; then
  say "ready: .venv is complete, nothing to install"
  exit 0
fi

has_gpu() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
# PyTorch's CPU index answers within 3 s or counts as unreachable (offline, or a machine that
# reaches only a mirror): then no pip retries and timeouts, we go straight to the fallback.
cpu_index_reachable() {
  .venv/bin/python - "$CPU_INDEX/torch/" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=3).close()
EOF
}
# The newest `+cpu` torch the configured index (or find-links) offers, if any.
configured_cpu_torch() {
  "${PIP[@]}" index versions torch 2>/dev/null | sed -n 's/^Available versions: //p' \
    | tr ',' '\n' | tr -d ' ' | grep '+cpu$' | head -n 1
}

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if has_gpu; then
    say "GPU found: torch (CUDA build) comes with the project's dependencies"
  elif cpu_index_reachable; then
    say "no GPU: installing torch's CPU build from $CPU_INDEX"
    "${PIP[@]}" install -q torch --index-url "$CPU_INDEX" >>"$LOG" 2>&1 \
      || die "installing torch from $CPU_INDEX failed"
  else
    version=$(configured_cpu_torch || true)
    if [ -n "$version" ]; then
      say "no GPU; $CPU_INDEX unreachable: torch $version from the configured index"
      "${PIP[@]}" install -q "torch==$version" >>"$LOG" 2>&1 || die "installing torch $version failed"
    else
      say "no GPU; $CPU_INDEX unreachable and the configured index has no +cpu torch:"
      say "  torch comes from the configured index (on Linux that may be the multi-GB CUDA build)"
    fi
  fi
fi

say "installing fastscale and its dependencies into .venv (pip log: $LOG)"
"${PIP[@]}" install -q -e ".[test]" >>"$LOG" 2>&1 || die "pip install -e '.[test]' failed"
.venv/bin/python -c "import spaces, planner, trials, torch, ray, optuna, onnx, onnxruntime, mlflow" \
  >>"$LOG" 2>&1 \
  || die "the environment is incomplete"
echo "$want" >"$STAMP"
torch_version=$(.venv/bin/python -c "import torch; print(torch.__version__)")
say "ready: .venv (torch $torch_version, $(du -sh .venv | cut -f1) on disk)"
