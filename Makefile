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

.PHONY: install lock run test lint bench bench-smoke bench-peer browser frontend frontend-check clean

# Versions come from constraints.txt (what CI last passed with), not from whatever the registry has
# today: redis-py 8 changed a default and broke live sockets without a line of ours changing.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

# After changing dependencies in pyproject.toml: install the newest allowed versions and keep them.
lock:
	$(PY) -m pip install -q --upgrade -e ".[dev]"
	{ sed -n 1,2p constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

install: $(VENV)/.installed

# The demo's HTTP nodes call endpoints the platform itself serves, so loopback is allowed here.
# SECRET_KEY and WEFT_ENCRYPTION_KEY: generated once and kept in data/ unless set (WEFT_LOCAL_KEYS).
# PORT and HOST say where to listen (a taken port stops it before anything starts); RESET_DEMO_TOKENS=1
# issues new demo tokens (they are kept across restarts otherwise).
run: install
	WEFT_LOCAL_KEYS=1 $(PY) manage.py migrate --noinput -v0
	WEFT_HTTP_ALLOW_NETWORKS=$${WEFT_HTTP_ALLOW_NETWORKS:-127.0.0.0/8} $(PY) manage.py runweft --host $(HOST) --port $(PORT) $(if $(RESET_DEMO_TOKENS),--reset-demo-tokens)

# Debian's chromium for the browser tests (Playwright drives it; no browser download). An installed
# /usr/bin/chromium is used as it is; otherwise apt-get waits up to 10 minutes for the dpkg lock
# (another apt run in progress) instead of failing at once.
APT := apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3
browser:
	@test -x /usr/bin/chromium || command -v chromium >/dev/null 2>&1 || \
		($(APT) update -qq && $(APT) install -y -qq chromium >/dev/null)

# The editor (frontend/, React Flow + CodeMirror) is built into static/editor/ and committed, so
# `make run` and `make test` need no Node. `make frontend` rebuilds it (Node 18+ and npm);
# `make frontend-check` (run by CI) rebuilds it from the lock file and fails if the result differs
# from the committed bundle.
frontend:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

frontend-check: frontend
	@if [ -n "$$(git status --porcelain -- static/editor)" ]; then \
		git status --short -- static/editor; \
		echo "static/editor/ differs from a fresh build of frontend/: run 'make frontend' and commit the result"; exit 1; fi

test: install browser
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m bench.run

bench-smoke: install
	$(PY) -m bench.run --quick --no-write

# Only the side-by-side with n8n (installed when missing), printed, nothing written.
bench-peer: install
	$(PY) -m bench.run --only peer --no-write

# Also what the tests leave in data/: their logs, databases (and -wal/-shm/-writers/-cache files)
# and demo token files.
clean:
	rm -rf $(VENV) data/*.sqlite3* data/test_* data/demo-tokens-*.json weft.egg-info
