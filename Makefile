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

.PHONY: serve test check lint bench lock clean js FORCE

# The venv heals itself: built by another Python (or half-built), it is made again.
PY_ID := $(shell $(PYTHON) -c 'import sys; print(sys.executable, *sys.version_info[:3])')
$(VENV)/.python: FORCE
	@if [ ! -x $(BIN)/python ] || [ "$$(cat $@ 2>/dev/null)" != "$(PY_ID)" ] \
	    || ! $(BIN)/python -c 'import sys' 2>/dev/null; then \
	  echo "creating $(VENV) with $(PY_ID)"; rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) && $(PIP) install --quiet --upgrade pip && echo "$(PY_ID)" > $@; \
	fi

FORCE:

# Stamps re-run the install whenever pyproject.toml, the lock or the Python changes.
$(VENV)/.run-installed: pyproject.toml $(LOCK) $(VENV)/.python
	$(PIP) install --quiet -c $(LOCK) -e '.[model,client]'
	touch $@

$(VENV)/.test-installed: pyproject.toml $(LOCK) $(VENV)/.python
	$(PIP) install --quiet -c $(LOCK) -e '.[model,test]'
	touch $@ $(VENV)/.run-installed

$(OLD_PROCRASTINATE): $(VENV)/.python
	$(PIP) download --quiet --no-deps --only-binary=:all: procrastinate==3.5.1 -d $(VENV)/wheels

serve: $(VENV)/.run-installed
	$(BIN)/tori-ingest serve

test: $(VENV)/.test-installed $(OLD_PROCRASTINATE)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory js; \
	else echo "npm not found: the JavaScript client's tests will be skipped"; fi
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/ruff format --check tori_ingest tests
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast loop for a developer: lint, types, and the unit and integration tiers but the corpus
# tests (one directory per tier: tests/unit, tests/integration, tests/e2e).
check: $(VENV)/.test-installed
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/ruff format --check tori_ingest tests
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest tests/unit tests/integration -m "not corpus" -q $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check tori_ingest tests
	$(BIN)/ruff format --check tori_ingest tests
	$(BIN)/lint-imports
	$(BIN)/mypy

# The JavaScript client (clients/js): its packages from its lock file, its types generated
# from this service's OpenAPI document, then compiled (tests/e2e/test_js_client.py runs it).
JS := clients/js
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# examples/sveltekit (its own lock file) links the built client: it builds after it.
EXAMPLE := examples/sveltekit
$(EXAMPLE)/node_modules/.installed: $(EXAMPLE)/package.json $(EXAMPLE)/package-lock.json
	cd $(EXAMPLE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

js: $(VENV)/.test-installed $(JS)/node_modules/.installed $(EXAMPLE)/node_modules/.installed
	cd $(JS) && TORI_INGEST=$(CURDIR)/$(BIN)/tori-ingest npm run --silent build
	cd $(EXAMPLE) && npm run --silent build

bench: $(VENV)/.run-installed
	$(PIP) install --quiet -c $(LOCK) -e '.[model,bench]'
	$(BIN)/tori-ingest bench

# Re-pin every dependency (after changing pyproject.toml); commit the result.
lock: $(VENV)/.python
	$(PIP) install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra model --extra client --extra bench --extra test \
		--universal --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) .tori .pytest_cache $(JS)/node_modules $(JS)/dist \
		$(EXAMPLE)/node_modules $(EXAMPLE)/build $(EXAMPLE)/.svelte-kit
