# zmqfeed: `make demo` for a live page, `make test` for the suite, `make bench` for figures.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
export DJANGO_DEBUG ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: help venv demo test lint bench multicast browser clean

help:
	@echo "make demo       live page at http://127.0.0.1:8000/ (embedded mode)"
	@echo "make test       the whole test suite (what .ci/run runs)"
	@echo "make bench      the end-to-end benchmark (QUICK=1 for a smoke run)"
	@echo "make multicast  rebuild pyzmq against Debian's libzmq (epgm/pgm/norm)"
	@echo "make test-multicast  the multicast tests, in .venv-multicast"
	@echo "make lint       the static checks: ruff, ruff format, mypy, lint-imports"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml zmqfeed/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

# Debian's chromium for the browser tests; Playwright never downloads a browser here.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium missing and apt-get not usable: browser tests will be skipped"; fi; }

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py zmq_feeds import project/demo_feeds.json
	DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_PASSWORD=admin DJANGO_SUPERUSER_EMAIL=admin@localhost \
	  $(PY) manage.py createsuperuser --noinput >/dev/null 2>&1 || true
	@echo
	@echo "  Live page:  http://127.0.0.1:8000/"
	@echo "  Admin:      http://127.0.0.1:8000/admin/  (user: admin  password: admin, 127.0.0.1 only)"
	@echo
	$(PY) manage.py zmq_publish tcp://127.0.0.1:5556 --bind --rate 20 --json --topic demo & \
	  trap "kill $$! 2>/dev/null" EXIT INT TERM; \
	  $(VENV)/bin/daphne -b 127.0.0.1 -p 8000 project.asgi:application

# The static checks of `make lint` first (seconds), then Django's, then the suite.
test: lint browser
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run zmqfeed
	$(VENV)/bin/pytest -m "not multicast" $(PYTEST_ARGS)
	$(MAKE) test-multicast

# ruff, the formatting, types, and the import contracts of pyproject.toml (zmqfeed.core is
# pure; plumbing > shells > settings and values > core). The import graph takes
# milliseconds to build, so lint-imports keeps no cache.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy zmqfeed
	$(VENV)/bin/lint-imports --no-logo --no-cache

bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick,)
	$(PY) -m bench.publish $(if $(QUICK),--quick,)
	$(PY) -m bench.report --readme README.md

# pyzmq from source against Debian's libzmq, which has epgm/pgm/norm (docs/multicast.md).
# `make multicast` puts it in .venv (the users' path); `make test-multicast` builds its own
# .venv-multicast and runs the multicast tests there, leaving .venv as PyPI's wheels have it.
MC_VENV  := .venv-multicast
MC_STAMP := $(MC_VENV)/.installed
LIBZMQ_DEV = pkg-config --exists libzmq 2>/dev/null || dpkg -s libzmq3-dev >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q libzmq3-dev \
	      || { apt-get update -q && apt-get install -y -q libzmq3-dev; }; \
	  else echo "libzmq3-dev is missing: sudo apt-get install libzmq3-dev" >&2; exit 1; fi; }
PYZMQ_SOURCE = install -q --force-reinstall --no-deps --no-binary pyzmq pyzmq
# Fails unless this pyzmq has both; a pyzmq wheel cached from a build without libzmq3-dev
# would not, hence the second try without pip's cache.
HAS_MULTICAST = -c "import sys, zmq; print('pyzmq', zmq.pyzmq_version(), 'libzmq', \
	zmq.zmq_version(), 'pgm:', zmq.has('pgm'), 'norm:', zmq.has('norm')); \
	sys.exit(not (zmq.has('pgm') and zmq.has('norm')))"

multicast: $(STAMP)
	@$(LIBZMQ_DEV)
	$(PIP) $(PYZMQ_SOURCE)
	$(PY) $(HAS_MULTICAST) || { $(PIP) $(PYZMQ_SOURCE) --no-cache-dir && $(PY) $(HAS_MULTICAST); }

$(MC_STAMP): requirements.txt pyproject.toml
	@$(LIBZMQ_DEV)
	test -x $(MC_VENV)/bin/python || $(PYTHON) -m venv $(MC_VENV)
	$(MC_VENV)/bin/pip install -q -r requirements.txt
	$(MC_VENV)/bin/pip install -q --no-deps -e .
	$(MC_VENV)/bin/pip $(PYZMQ_SOURCE)
	$(MC_VENV)/bin/python $(HAS_MULTICAST) \
	  || { $(MC_VENV)/bin/pip $(PYZMQ_SOURCE) --no-cache-dir && $(MC_VENV)/bin/python $(HAS_MULTICAST); }
	touch $@

.PHONY: test-multicast
test-multicast: $(MC_STAMP)
	$(MC_VENV)/bin/pytest -m multicast

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache .mypy_cache build
