# Two entry points for a fresh clone (README quick start): `make serve` and `make test`.
# Installs are pinned by requirements.lock (used as constraints: the exact versions CI tested).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
PYTEST_ARGS ?=
LOCK := requirements.lock
# The oldest Procrastinate that pyproject allows: the migration test upgrades from its schema.
OLD_PROCRASTINATE := $(VENV)/wheels/procrastinate-3.5.1-py3-none-any.whl

.PHONY: serve test lint bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps re-run the install whenever pyproject.toml or the lock changes.
$(VENV)/.run-installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) install --quiet -c $(LOCK) -e '.[model,client]'
	touch $@

$(VENV)/.test-installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) install --quiet -c $(LOCK) -e '.[model,test]'
	touch $@ $(VENV)/.run-installed

$(OLD_PROCRASTINATE): | $(BIN)/python
	$(PIP) download --quiet --no-deps --only-binary=:all: procrastinate==3.5.1 -d $(VENV)/wheels

serve: $(VENV)/.run-installed
	$(BIN)/tori-ingest serve

test: $(VENV)/.test-installed $(OLD_PROCRASTINATE)
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/ruff format --check tori_ingest tests
	$(BIN)/lint-imports

bench: $(VENV)/.run-installed
	$(PIP) install --quiet -c $(LOCK) -e '.[model,bench]'
	$(BIN)/tori-ingest bench

# Re-pin every dependency (after changing pyproject.toml); commit the result.
lock: | $(BIN)/python
	$(PIP) install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra model --extra client --extra bench --extra test \
		--universal --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) .tori .pytest_cache
