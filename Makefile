# Weft: `make run` starts the platform on its embedded default; `make test` runs the whole suite.
# Both install everything they need into .venv first (only Python 3.11+ is required).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Test processes: the suite is mostly waiting on real servers and workers, so two run side by side
# (one test module per process: --dist loadfile). PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
HOST ?= 127.0.0.1

.PHONY: install run test lint bench bench-smoke browser clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The demo's HTTP nodes call endpoints the platform itself serves, so loopback is allowed here.
# SECRET_KEY and WEFT_ENCRYPTION_KEY: generated once and kept in data/ unless set (WEFT_LOCAL_KEYS).
run: install
	WEFT_LOCAL_KEYS=1 $(PY) manage.py migrate --noinput -v0
	WEFT_HTTP_ALLOW_NETWORKS=$${WEFT_HTTP_ALLOW_NETWORKS:-127.0.0.0/8} $(PY) manage.py runweft --host $(HOST) --port $(PORT)

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: install browser
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m bench.run

bench-smoke: install
	$(PY) -m bench.run --quick --no-write

clean:
	rm -rf $(VENV) data/*.sqlite3* weft.egg-info
