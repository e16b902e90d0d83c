# XAI Lens. On a fresh Linux machine with Python 3.11, 3.12 or 3.13 and make, the two commands are:
#   make run     create .venv with exactly the runtime packages of uv.lock, start the app
#   make test    also the dev tools of uv.lock, run the pytest suite, ruff and mypy
# Python: the first of python3, python3.13, python3.12, python3.11 on PATH that is 3.11-3.13, or make PYTHON=...
# uv (pinned below) is installed once into .tools/ with that Python's pip; it installs exactly what uv.lock says.
# Installs are skipped when the stamp files in .venv are newer than uv.lock.

VENV        := .venv
PY          := $(VENV)/bin/python
TOOLS       := .tools
UV_VERSION  := 0.13.9
UV          := $(TOOLS)/bin/uv
PYTEST_ARGS ?=
PYTHON      ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
                 command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null \
                 && command -v $$p && break; done)
PYVER       := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# uv installs into $(VENV) (also when make is called with another VENV) and never downloads a Python itself.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test smoke lint lock bench clean distclean check-python

run: $(VENV)/.runtime-$(PYVER)
	$(PY) -m streamlit run streamlit_app.py

test: $(VENV)/.dev-$(PYVER)
	@status=0; \
	$(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	$(VENV)/bin/ruff check . || status=$$?; \
	$(PY) -m mypy || status=$$?; \
	exit $$status

# The browser smoke tests and the recorded maps: what CI runs on a second Python (see .ci/run).
smoke: $(VENV)/.dev-$(PYVER)
	$(PY) -m pytest tests/browser/test_smoke.py tests/methods/test_reference_maps.py tests/test_lock.py $(PYTEST_ARGS)

lint: $(VENV)/.dev-$(PYVER)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

# After editing the dependencies in pyproject.toml: resolve uv.lock for Python 3.11-3.13 and export requirements.txt.
lock: $(UV)
	$(UV) lock
	$(UV) export --locked --no-dev --no-hashes --no-emit-project --output-file requirements.txt

bench: $(VENV)/.runtime-$(PYVER)
	@for f in bench/*.py; do [ -e "$$f" ] || { echo "no bench/*.py yet"; break; }; echo "== $$f"; $(PY) "$$f" || exit 1; done

clean:
	rm -rf artifacts .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -not -path './$(TOOLS)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(TOOLS)

check-python:
	@if [ -z "$(PYVER)" ] || ! $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'; then \
	  echo "error: XAI Lens needs Python 3.11, 3.12 or 3.13; found '$(PYTHON)' $(PYVER)." >&2; \
	  echo "       Install one (e.g. apt install python3.12) or run: make PYTHON=/path/to/python3.12 $(MAKECMDGOALS)" >&2; \
	  exit 1; \
	fi

$(UV): | check-python
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "error: $(PYTHON) cannot create virtual environments; install its venv support (Debian: apt install python3-venv)." >&2; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --disable-pip-version-check -q uv==$(UV_VERSION)

# --inexact: `make run` after `make test` keeps the dev tools; both install exactly the locked versions.
# --compile-bytecode: the first start imports TensorFlow from .pyc files, not by compiling ~2,000 modules (twice as
# fast; where PYTHONDONTWRITEBYTECODE is set, as on CI machines, it would otherwise compile them on every start).
$(VENV)/.runtime-$(PYVER): uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --no-dev --inexact --compile-bytecode --python $(PYTHON)
	@touch $@

$(VENV)/.dev-$(PYVER): uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
	@touch $@ $(VENV)/.runtime-$(PYVER)
