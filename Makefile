# Two entry points for a fresh clone (README quick start): `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[model]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[model,test]'
	touch $@ $(VENV)/.run-installed

serve: $(VENV)/.run-installed
	$(BIN)/tori-ingest serve

test: $(VENV)/.test-installed
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/ruff format --check tori_ingest tests

bench: $(VENV)/.run-installed
	$(BIN)/tori-ingest bench

clean:
	rm -rf $(VENV) .tori .pytest_cache
