#!/usr/bin/env bash
# The checkers (ruff, mypy), then the test suite: unit, integration (real Docker, real model), notebooks (nbval), UI (real Chromium).
# LAB_FULL=1 adds the long suites.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BIN=.venv/bin
if docker info >/dev/null 2>&1; then
  # Sandbox images: built once per machine (up-to-date ones, by content hash, are reused); a failed build
  # stops the run here, loudly, rather than as a skip or an obscure failure later.
  $BIN/lab sandbox build >/dev/null || { echo "test.sh: building sandbox images failed (see above)" >&2; exit 1; }
  $BIN/lab sandbox gc >/dev/null 2>&1 || true  # what killed runs left behind
elif [ -n "${CI:-}" ]; then
  echo "test.sh: CI needs a Docker engine and none answers (scripts/machine.sh starts one as root)" >&2
  exit 1
else
  echo "test.sh: no Docker engine: the Docker sandbox tests will be skipped (make machine starts one)" >&2
fi
# the checkers first (pyproject.toml): a finding stops the run before the long tests
$BIN/ruff check . || { echo "test.sh: ruff found problems (above)" >&2; exit 1; }
$BIN/mypy || { echo "test.sh: mypy found problems (above)" >&2; exit 1; }
mkdir -p test-artifacts
exec $BIN/python -m pytest -q -p no:cacheprovider -rs --durations=15 "$@"
