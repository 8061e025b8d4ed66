# Openrate: `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install migrate seed test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

# seed_demo loads the demo records once, seed_demo_activity their email history for the
# dashboards; later runs leave the database as it is.
seed: migrate
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_demo_activity

run: seed
	DEBUG=$${DEBUG:-true} HOST=$(HOST) PORT=$(PORT) bin/run-all

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

# Benchmarks on PostgreSQL + Redis (they need wrk and nginx: apt-get install -y wrk nginx).
bench: install
	$(BIN)/python bench/run.py --granian-args "--blocking-threads 1"
	$(BIN)/python bench/timeline.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/listemail.py
	$(BIN)/python bench/sequences.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/forget.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/importcsv.py
	$(BIN)/python bench/api_events.py
	$(BIN)/python bench/capture.py

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache
