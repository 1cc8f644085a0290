# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Everything else (the venv, pinned packages, the Kafka jars) is installed on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration bench fuzz broker-down clean

$(STAMP): pyproject.toml constraints.txt scripts/bootstrap
	PYTHON=$(PYTHON) bash scripts/bootstrap
	@touch $@

## demo: local Kafka broker + agencies of both countries + records flowing both ways
demo: $(STAMP)
	$(BIN)/exchange demo

## test: ruff, mypy (strict), hermetic unit tests (no network), integration tests on a real broker
test: lint typecheck unit integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	bash scripts/offline $(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

bench: $(STAMP)
	$(BIN)/python bench/bench_crypto.py
	$(BIN)/exchange bench --docs docs/benchmarks.md

## fuzz: coverage-guided fuzzing of the envelope decode/verify/open path (atheris) for FUZZ_SECONDS
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python -c 'import atheris' 2>/dev/null || $(BIN)/python -m pip install -q -c constraints.txt -e '.[fuzz]'
	$(BIN)/python -m fuzz.fuzz_envelope --seconds $(FUZZ_SECONDS)

broker-down: $(STAMP)
	$(BIN)/exchange broker down

clean: broker-down
	rm -rf .exchange
