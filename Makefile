# The README's two commands: `make demo` and `make test`. CI runs `.ci/run`, which runs `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck pytest demo bench chaos fuzz emulator clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests bench grafana deploy
	$(BIN)/ruff format --check orchestrator tests bench grafana deploy

typecheck: $(STAMP)
	$(BIN)/mypy --strict orchestrator

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/orchestrator demo

emulator: $(STAMP)
	$(BIN)/orchestrator emulator --host 127.0.0.1 --port 4580

bench: $(STAMP)
	$(BIN)/python -m bench

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

# 10,000 generated bodies per property against the parser and botocore's validator.
fuzz: $(STAMP)
	ORCHESTRATOR_FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/test_messages.py -k "body or model" \
		--timeout=1800 --hypothesis-show-statistics

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
