# The two commands of the README: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

NODE_STAMP := node_modules/.package-lock.json

.PHONY: demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps -e .
	touch $(STAMP)

# Azurite, the Azure Storage emulator the tests run against.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m examples.demo

lint: $(STAMP)
	$(BIN)/ruff check aksfw_core function_app.py tests examples bench
	$(BIN)/ruff format --check aksfw_core function_app.py tests examples bench
	$(BIN)/mypy

test: lint $(NODE_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.sync_scale

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info
