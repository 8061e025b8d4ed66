# Openrate: `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# The tool that writes the lock files (make lock), installed into .venv on demand.
UV_VERSION := 0.13.8
# make lock LOCK_ARGS=--upgrade moves every pin to the newest release pyproject.toml allows;
# LOCK_ARGS='--upgrade-package django' moves one.
LOCK_ARGS ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet --no-config --default-index https://pypi.org/simple \
	--universal --python-version 3.11 --generate-hashes --custom-compile-command 'make lock'

.PHONY: run install lock migrate seed test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs come from the dev lock (runtime + the test extra), every file checked against the
# hashes PyPI publishes; the lock holds the project's dependencies, so the project goes in with
# --no-deps.
$(VENV)/.installed: pyproject.toml requirements/dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Rewrites both locks from pyproject.toml, keeping every pin that still satisfies it. uv reads
# neither pip's configuration nor PIP_* variables (--no-config keeps uv.toml out too), so the
# locks are resolved against PyPI alone and list the hashes of every file PyPI serves for each
# pinned release; --universal adds the markers another Python 3.11 needs (async-timeout below
# 3.11.3, Windows' tzdata). The production lock takes its versions from the dev lock: production
# runs the releases the tests ran on.
# A pip that also reads local indexes or find-links (this machine's: /opt/pypi, /opt/pypi-more,
# /opt/wheels) still installs PyPI's bytes: in hash-checking mode it prefers a file whose hash
# is in the lock and drops a listed file whose hash is not; a local build of a pinned release
# would be taken only if no file with a locked hash were offered, and then fail the check.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(UV_COMPILE) --extra test $(LOCK_ARGS) pyproject.toml -o requirements/dev.txt
	$(UV_COMPILE) --constraint requirements/dev.txt pyproject.toml -o requirements/production.txt

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

# Benchmarks on PostgreSQL + Redis (they need wrk and nginx: apt-get install -y wrk nginx);
# bench/cluster.py starts its own PostgreSQL and Redis in network namespaces (root).
bench: install
	$(BIN)/python bench/run.py --granian-args "--blocking-threads 1"
	$(BIN)/python bench/timeline.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/listemail.py
	$(BIN)/python bench/lag.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/sequences.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/forget.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/importcsv.py
	$(BIN)/python bench/api_events.py
	$(BIN)/python bench/email_log.py
	$(BIN)/python bench/capture.py

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache
