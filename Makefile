# The two commands of the README:  make dev   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint typecheck unit install bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## Start the whole local stack (Temporal dev server, worker, gateway, SQLite).
dev: $(STAMP)
	TOKENHUB_ENV=development $(BIN)/tokenhub dev

## Install everything and run lint, type checks and the whole test suite.
test: $(STAMP)
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	@bash bench/setup.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .tokenhub .pytest_cache .mypy_cache .ruff_cache
