# The README's two commands: `make demo` and `make test`. CI runs `.ci/run`, which runs `make test`.
#
# Installs are stamped: $(DEMO_STAMP) after `pip install -e .[demo]` (what `orchestrator demo`
# needs), $(STAMP) after `pip install -e .[dev]` (the toolchain, which includes demo). Either is
# redone when pyproject.toml changes, so `make demo` then `make test` adds dev on top.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
# The Debian package `prometheus` (prometheus + promtool): the alert and dashboard tests run them.
PROMETHEUS_TOOLS := prometheus promtool

.PHONY: venv test lint typecheck pytest prometheus demo bench chaos fuzz emulator clean

$(BIN)/python:
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "make: $(PY) is not Python 3.11 or newer; run make PY=python3.11 (or newer)" >&2; \
		exit 1; }
	@$(PY) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "make: '$(PY) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; \
		exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(DEMO_STAMP)

venv: $(STAMP)

# Installs the Debian package when a tool is missing (as root, else through sudo), or stops
# saying what to install: the tests that need them fail, never skip.
prometheus:
	@missing=""; for tool in $(PROMETHEUS_TOOLS); do \
		command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] && exit 0; \
	hint="install the Debian package prometheus (apt-get install prometheus), or put$$missing on PATH"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: missing$$missing: $$hint" >&2; exit 1; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; via="as root"; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; via="through sudo"; \
	else echo "make: missing$$missing, not root and no sudo: $$hint" >&2; exit 1; fi; \
	echo "make: missing$$missing: installing the Debian package prometheus ($$via)"; \
	{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install \
		-y -qq --no-install-recommends prometheus >/dev/null; } || { \
		echo "make: apt-get install prometheus failed: $$hint" >&2; exit 1; }; \
	for tool in $(PROMETHEUS_TOOLS); do command -v $$tool >/dev/null 2>&1 || { \
		echo "make: $$tool still not found after installing prometheus: $$hint" >&2; \
		exit 1; }; done

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests bench grafana deploy
	$(BIN)/ruff format --check orchestrator tests bench grafana deploy

typecheck: $(STAMP)
	$(BIN)/mypy --strict orchestrator bench

pytest: $(STAMP) prometheus
	$(BIN)/pytest

test: prometheus lint typecheck pytest

demo: $(DEMO_STAMP)
	$(BIN)/orchestrator demo

emulator: $(DEMO_STAMP)
	$(BIN)/orchestrator emulator --host 127.0.0.1 --port 4580

bench: $(STAMP)
	$(BIN)/python -m bench

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

# 10,000 generated bodies per property against the parser and botocore's validator, and 2,000
# through a running worker.
fuzz: $(STAMP)
	ORCHESTRATOR_FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/test_messages.py -k "body or model" \
		--timeout=1800 --hypothesis-show-statistics
	ORCHESTRATOR_FUZZ_WORKER_BODIES=2000 $(BIN)/pytest tests/test_fuzz_worker.py --timeout=1800

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
