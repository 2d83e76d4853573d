# Two commands: `make run` (the app on http://127.0.0.1:7071 with Azurite and a local mail catcher)
# and `make test` (lint, type checks, unit, Azurite, end-to-end and infrastructure checks).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest infra-check bench deps clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(BIN)/.installed node_modules/.installed

run: deps
	$(BIN)/python -m devhost

# infra-check first: it builds .venv-checkov, which tests/infra/test_checkov_gate.py uses.
test: deps lint typecheck infra-check pytest

lint: deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # the layers of leads/ (pyproject.toml [tool.importlinter])

typecheck: deps
	$(BIN)/mypy

# Two workers (pytest-xdist): these machines have 2 cores, and much of the suite waits on Azurite, the local
# host and timers. `worksteal` balances them; tests/conftest.py orders the two longest tests so they start
# at once. `make pytest PYTEST_WORKERS=0` runs everything in one process.
PYTEST_WORKERS ?= 2
pytest: deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

infra-check:
	bash infra/check.sh

bench: deps
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench_manage
	$(BIN)/python -m tests.bench_import
	$(BIN)/python -m tests.bench_privacy

clean:
	rm -rf $(VENV) .venv-checkov node_modules .local .pytest_cache .mypy_cache .ruff_cache
