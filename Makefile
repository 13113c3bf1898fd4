# One command to run the demo, one to run the tests; both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: venv test unit test-services demo lint typecheck check clean bench bench-quick

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "omop-federation needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tests that need no PostgreSQL or Redis server (neither embedded nor system ones).
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not services" $(PYTEST_ARGS)

# The database/broker tests only, e.g. against system servers named by OMOPFED_TEST_PG_URL / OMOPFED_TEST_REDIS_URL.
# Whole-federation tests start their own embedded servers anyway, so they are not repeated here.
test-services: $(STAMP)
	$(BIN)/python -m pytest -m "services and not stack" $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/omopfed demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy --strict over the packages and tests/ ([tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

# Everything a reviewer runs: ruff check, ruff format --check, mypy --strict, then the whole test suite.
check: lint typecheck test

# Benchmarks start their own local federations, write benchmarks/results/<date>.json and the tables in
# BENCHMARKS.md. Quick: under 5 minutes on 2 cores. Full: adds 1M persons per trust and 32 trusts.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --mode full

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --mode quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
