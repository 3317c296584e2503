# Two commands: `make run` (install and serve on http://127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-run-$(shell cat requirements.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt tests/requirements.txt | sha1sum | cut -c1-12)
DEV_ENV := FLASK_SESSION_COOKIE_SECURE=false FLASK_TERMINUS_BASE_URL=http://127.0.0.1:5000

.PHONY: install install-dev run test test-sqlite test-postgresql browser fuzz faults bench lint format package-check clean

# The pinned runtime set (what `make run` and production need).
install: $(STAMP)

# Plus the test, lint and browser tools (tests/requirements.txt).
install-dev: $(DEV_STAMP)

$(STAMP): requirements.txt
	@bash scripts/system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

$(DEV_STAMP): $(STAMP) tests/requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	rm -f $(VENV)/.installed-dev-*
	touch $@

run: install
	$(DEV_ENV) $(BIN)/flask --app terminus_hub db upgrade
	$(DEV_ENV) $(BIN)/flask --app terminus_hub run --host 127.0.0.1 --port 5000

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	bash scripts/openapi-lint/run.sh

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The whole suite on SQLite; then again on PostgreSQL and Redis when TEST_DATABASE_URL is set;
# then the browser suite.
test: lint test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgresql; \
	else echo "TEST_DATABASE_URL unset: PostgreSQL run skipped (CI sets it)"; fi
	$(MAKE) --no-print-directory browser

test-sqlite: install-dev
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL $(BIN)/pytest $(PYTEST_ARGS)

test-postgresql: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

# Real flows in Debian's chromium (Playwright): the app under gunicorn, a real SMTP sink and a
# SAML IdP; on PostgreSQL and Redis when TEST_DATABASE_URL is set, else on SQLite.
browser: install-dev
	@bash scripts/system-packages.sh --browser
	@bash scripts/npm-ci.sh tests/browser/axe
	$(BIN)/pytest -m browser tests/browser -p no:cacheprovider

# Schema-driven fuzzing of the API (schemathesis against openapi.json); CI runs it too.
fuzz: install-dev
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL $(BIN)/pytest -m fuzz tests/fuzz -p no:cacheprovider

# Fault injection: its own Redis, a cuttable proxy in front of PostgreSQL, a misbehaving SMTP
# server and two gunicorn instances (needs TEST_DATABASE_URL; CI sets it).
faults: install-dev
	$(BIN)/pytest -m faults tests/faults -p no:cacheprovider

# Benchmarks against Flask-Security-Too and a bare Flask route (about 12 minutes on 2 cores;
# needs the machine's PostgreSQL and Redis, installs Debian's wrk); writes docs/benchmarks.md.
bench: install-dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Build the wheel, install it in a clean virtualenv, migrate and serve from an empty folder.
package-check:
	bash scripts/check-package.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
