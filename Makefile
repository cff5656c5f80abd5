# Chainfin: `make demo` runs the product on embedded defaults; `make test` proves it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
DEMO_ADDR ?= 127.0.0.1:8000
DEMO_DIR ?= .demo
export CHAINFIN_DEMO_DIR := $(abspath $(DEMO_DIR))
SMOKE_DB := /tmp/chainfin-smoke-$(shell id -u).sqlite3

# Both sets pinned with hashes (pip-tools); every install checks them (--require-hashes).
PIP_INSTALL := $(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links

.DEFAULT_GOAL := help
.PHONY: help install install-runtime lint test test-postgres test-sqlite demo serve bench \
	bench-peers clean requirements requirements-upgrade

help:
	@echo "make demo   set up and run web + worker + beat on SQLite with demo data"
	@echo "make test   set up, lint, run the suite on PostgreSQL/Redis and a SQLite smoke run"
	@echo "make serve  run nginx + gunicorn, worker, beat and the log sequencer (production settings)"
	@echo "make bench  print benchmark figures (PostgreSQL)"
	@echo "make bench-peers  journal transfers against django-hordak's, 1 and 4 processes"
	@echo "make requirements-upgrade  move every pin to its newest release (then make test)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Development and CI: the runtime set plus the tools that test and lint (requirements-dev.txt
# holds both, at the same versions).
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Production: the runtime set alone; no test runner, linter or type checker on a server.
$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(PIP_INSTALL) -r requirements.txt
	touch $@

install-runtime: $(VENV)/.runtime-installed

# After editing requirements.in or requirements-dev.in: pins of untouched packages stay put.
requirements: install
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --allow-unsafe --output-file=requirements-dev.txt requirements-dev.in

# Every package to its newest release allowed by the .in files; review the diff, run make test.
requirements-upgrade: install
	$(PIP_COMPILE) --upgrade --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --allow-unsafe --upgrade --output-file=requirements-dev.txt requirements-dev.in

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	DATABASE_URL=sqlite:///:memory: CELERY_BROKER_URL=memory:// $(MANAGE) makemigrations --check --dry-run

test: lint test-postgres test-sqlite

# In parallel processes (pytest-xdist), one per CPU, at most four: each has its own test
# database (config/settings/test.py), every test that starts a worker its own queue. Work-stealing
# keeps a process busy while another runs a long test. PYTEST_PROCESSES=0 runs in one process.
PYTEST_PROCESSES ?= auto
test-postgres: install
	$(BIN)/pytest -n $(PYTEST_PROCESSES) --maxprocesses=4 --dist worksteal

# The embedded default must work too: a short run of the suite's smoke tests on SQLite.
test-sqlite: install
	rm -f $(SMOKE_DB)
	DATABASE_URL=sqlite:///$(SMOKE_DB) $(BIN)/pytest -m sqlite_smoke -p no:cacheprovider

demo: install
	@mkdir -p $(DEMO_DIR)
	$(MANAGE) migrate --noinput -v0
	$(MANAGE) seed_demo
	$(MANAGE) seed_financing_demo
	$(MANAGE) witness_demo $(DEMO_DIR)
	@echo
	@echo "  Chainfin demo       http://$(DEMO_ADDR)/"
	@echo "  Officer admin       http://$(DEMO_ADDR)/admin/   password chainfin-demo + a 6-digit code"
	@echo "  Officer logins      admin (superuser), officer, senior, auditor"
	@echo "  Their codes         $(MANAGE) totp_code admin   (demo only; any officer's name)"
	@echo "                      or an authenticator app: admin's secret CHAINFINDEMOONLYADMINAAAAAAAAAAA"
	@echo "                      (every officer's secret is listed above by seed_demo)"
	@echo "  Merchant users      merchant1, merchant2, merchant3 / chainfin-demo"
	@echo "  Marketplace API     http://$(DEMO_ADDR)/api/docs/   (key: $(MANAGE) create_api_key acme)"
	@echo "  Demo seller ids     acme: A3F9K2QZ7, A7M2R8XD4   nordmarkt: NM-004417"
	@echo "  Global log          http://$(DEMO_ADDR)/.well-known/chainfin-log-key   (checkpoint: GET /api/v1/checkpoint)"
	@echo "  Worker, beat, witness logs: $(DEMO_DIR)/worker.log, beat.log, witness.log   (Ctrl-C stops all)"
	@echo
	@$(BIN)/python -m config.demo --addr $(DEMO_ADDR) --dir $(DEMO_DIR)

# Production, as the README's "Running in production" describes: the environment (or .env)
# holds DATABASE_URL, CACHE_URL, CELERY_BROKER_URL, DJANGO_SECRET_KEY, CHAINFIN_SEALING_KEYS,
# METRICS_TOKEN and DJANGO_ALLOWED_HOSTS; nginx comes from Debian (apt-get install nginx).
serve: export DJANGO_SETTINGS_MODULE := config.settings.production
serve: install-runtime
	@test -x /usr/sbin/nginx || { echo "nginx is missing: apt-get install -y nginx"; exit 1; }
	$(MANAGE) check --deploy --fail-level WARNING
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput -v0
	$(BIN)/python -m config.serve

bench: install
	$(BIN)/python -m tests.bench.ledger_bench
	$(BIN)/python -m tests.bench.api_bench
	$(BIN)/python -m tests.bench.books_bench
	$(BIN)/python -m tests.bench.log_bench
	$(BIN)/python -m tests.bench.settlement_bench
	$(BIN)/python -m tests.bench.recon_bench

# The django-hordak harness in ../shared/peers/hordak (own virtualenv in /tmp, own database),
# then Chainfin's transfers, same processes, seconds, accounts and preload; PEERS_ARGS for more.
bench-peers: install
	$(BIN)/python -m tests.bench.peers_bench $(PEERS_ARGS)

clean:
	rm -rf $(DEMO_DIR) $(SMOKE_DB) .serve
