# Two entry points on a fresh machine: `make run` and `make test`.
# Both create .venv on first use and reinstall when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATABASE_URL ?= sqlite:///var/registry.sqlite3
PORT ?= 8000
export DATABASE_URL PORT

.PHONY: run test test-sqlite test-postgres lint bench clean architecture

$(VENV)/.run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.run
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

## Run the service with demo offices: SQLite file, console SMS, jobs in-process.
run: $(VENV)/.run
	$(BIN)/python -m scheduler migrate
	$(BIN)/python -m scheduler seed-demo
	$(BIN)/python -m scheduler serve

## Lint, type-check, then the whole suite on SQLite and on a throwaway PostgreSQL.
test: lint test-sqlite test-postgres

lint: $(VENV)/.dev
	$(BIN)/ruff check scheduler tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## Redraw the package picture in docs/architecture.md from the imports (a test checks it is current).
architecture: $(VENV)/.dev
	$(BIN)/python docs/architecture.py

test-sqlite: $(VENV)/.dev
	$(BIN)/pytest --db sqlite

test-postgres: $(VENV)/.dev
	$(BIN)/pytest --db postgres

bench: $(VENV)/.dev
	$(BIN)/python bench/rush.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

## Stoplight Prism (npm) serves Twilio's OpenAPI spec for the conformance tests.
PRISM := .tools/prism/node_modules/.bin/prism
.PHONY: prism
prism: $(PRISM)
$(PRISM):
	mkdir -p .tools/prism
	npm install --prefix .tools/prism --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5.14.2
	touch $@
test-sqlite test-postgres: prism
