#!/usr/bin/env bash
# The test suite: unit, integration (real Docker, real model), notebooks (nbval), UI (real Chromium).
# LAB_FULL=1 adds the long suites.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BIN=.venv/bin
if docker info >/dev/null 2>&1; then
  $BIN/lab sandbox build 2>/dev/null || true
fi
mkdir -p test-artifacts
exec $BIN/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
