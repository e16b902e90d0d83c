# XAI Lens. On a fresh Linux machine with Python 3.11 the two commands are:
#   make run     create .venv, install requirements.txt, start the app
#   make test    also install requirements-dev.txt, run the pytest suite, ruff and mypy
# Installs are skipped when the stamp files in .venv are newer than the requirements files.

VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip install --disable-pip-version-check
PYTHON      ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=

.PHONY: run test lint bench clean distclean

run: $(VENV)/.runtime
	$(PY) -m streamlit run streamlit_app.py

test: $(VENV)/.dev
	@status=0; \
	$(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	$(VENV)/bin/ruff check . || status=$$?; \
	$(PY) -m mypy || status=$$?; \
	exit $$status

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

bench: $(VENV)/.runtime
	@for f in bench/*.py; do [ -e "$$f" ] || { echo "no bench/*.py yet"; break; }; echo "== $$f"; $(PY) "$$f" || exit 1; done

clean:
	rm -rf artifacts .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# innvestigate 2.1.2 requires Python >= 3.9, < 3.12 and TensorFlow < 2.15: only 3.11 is tested.
$(PY):
	@v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	if [ "$$v" != "3.11" ]; then \
	  echo "error: Python 3.11 is required (innvestigate 2.1.2 needs Python < 3.12)." >&2; \
	  echo "       Found: '$(PYTHON)' $${v:-(none)}. Install python3.11 or run: make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; \
	fi
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PIP) -r requirements-dev.txt
	@touch $@
