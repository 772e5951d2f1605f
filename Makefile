# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create the virtualenv in .venv when it is missing and install the project into it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean help

help:
	@echo "make demo   - install into .venv (if needed) and run the whole pipeline against the simulator"
	@echo "make test   - install into .venv (if needed) and run the test suite"
	@echo "make lint   - ruff (lint and format), the import contracts, mypy (strict)"
	@echo "make bench  - run the benchmarks in benchmarks/ (minutes; writes benchmarks/RESULTS.md)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "canton-billing needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,kafka]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/billing demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pipeline projections commands tests benchmarks
	$(BIN)/ruff format --check pipeline projections commands tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy pipeline projections commands tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
