# The two commands of the README: `make demo` and `make test`. Both set themselves up.
VENV := .venv
BIN := $(VENV)/bin

# The Python that builds the venvs (3.11, 3.12 or 3.13): PYTHON=python3.12 picks one. Once .venv
# exists, the interpreter its pyvenv.cfg records is the default, so a later `make test` builds
# the other venvs with the same one; a wrong one stops make with one line (below).
PYTHON_VERSIONS := 3.11 3.12 3.13
# What built .venv (none when `make clean` is among the goals: .venv goes first).
VENV_CFG := $(if $(filter clean,$(MAKECMDGOALS)),/dev/null,$(VENV)/pyvenv.cfg)
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell sed -n 's/^executable *= *//p' $(VENV_CFG) 2>/dev/null),python3)
endif

# Make stops at once, with one line naming the way out, when PYTHON cannot build aksfw's venvs
# or .venv is not PYTHON's: missing, not 3.11-3.13, without its venv module, or .venv built by
# another version (pyvenv.cfg records it) or by an interpreter since removed. Not for `make clean`.
define PYTHON_CHECK
ok() { case " $(PYTHON_VERSIONS) " in *" $$1 "*) return 0;; esac; return 1; };
again="run 'make clean', then 'make demo' (PYTHON=python3.12, or another 3.11-3.13, to choose)";
built=$$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' $(VENV_CFG) 2>/dev/null);
have=$$('$(PYTHON)' -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null);
if [ -n "$$built" ] && ! ok "$$built"; then
	echo "$(VENV) was built with Python $$built; aksfw needs 3.11, 3.12 or 3.13: $$again";
elif [ -n "$$built" ] && ! $(BIN)/python -c '' 2>/dev/null; then
	echo "the Python $$built that built $(VENV) no longer runs (moved or removed): $$again";
elif [ -z "$$have" ]; then
	echo "PYTHON=$(PYTHON) does not run here: name a Python 3.11, 3.12 or 3.13 (make demo PYTHON=python3.12)";
elif ! ok "$$have"; then
	echo "PYTHON=$(PYTHON) is Python $$have; aksfw needs 3.11, 3.12 or 3.13 (make demo PYTHON=python3.12)";
elif [ -n "$$built" ] && [ "$$built" != "$$have" ]; then
	echo "$(VENV) was built with Python $$built, not with PYTHON=$(PYTHON) (Python $$have): run 'make clean' first, or leave PYTHON= out to keep it";
elif [ -z "$$built" ] && ! '$(PYTHON)' -c 'import ensurepip, venv' 2>/dev/null; then
	echo "PYTHON=$(PYTHON) (Python $$have) has no venv module: install it (Debian, Ubuntu: apt install python$$have-venv)";
fi
endef
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),default)),)
PYTHON_PROBLEM := $(shell $(PYTHON_CHECK))
ifneq ($(PYTHON_PROBLEM),)
$(error $(PYTHON_PROBLEM))
endif
endif

STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

NODE_STAMP := node_modules/.package-lock.json

# Test processes (pytest-xdist): each has its own Azurite; tests wait on servers and queues
# more than on the CPU, so two keep a 2-core machine busy.
TEST_WORKERS ?= 2

.PHONY: demo test test-fast lint bench clean checkov check-infra

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps -e .
	touch $(STAMP)

# checkov (Bicep security checks) in its own venv: it pins older dependencies than the tests'.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip --quiet --disable-pip-version-check install -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# Offline: no policy download, no update check. checkov passes files it cannot parse, so a
# parsing error fails here, naming the file.
CHECKOV := CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov \
	-d infra --framework bicep --compact --skip-download

checkov: $(CHECKOV_STAMP)
	$(CHECKOV) --quiet > $(CHECKOV_VENV)/report.txt; status=$$?; cat $(CHECKOV_VENV)/report.txt; \
	if grep -q 'Parsing errors' $(CHECKOV_VENV)/report.txt; then \
		$(CHECKOV) | grep 'Error parsing' >&2; exit 1; fi; exit $$status

# The Bicep without a Bicep compiler (none installs here): checkov passes, every file parses
# (pycep and the check's own reader), every resource body fits the azure-mgmt-* REST models of
# its type@version (properties, types, enums, required ones), and what a compiler would refuse
# is not there (undefined names, missing outputs, module parameters, scopes, bounds):
# infra/schema/check.py, in a venv of its own (the SDKs pin their own dependencies).
# --self-test proves that each kind of mistake fails there (docs/development.md).
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

$(INFRA_STAMP): requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip --quiet --disable-pip-version-check install -r requirements-infra.txt
	touch $(INFRA_STAMP)

check-infra: checkov $(INFRA_STAMP)
	$(INFRA_VENV)/bin/python infra/schema/check.py --self-test

# Microsoft's Python Functions runtime (azure-functions-runtime needs Python 3.13) in its own
# venv, for the real-runtime tests (tests/app/test_runtime*.py). Python 3.13 comes from pyenv (the
# newest 3.13.x under `pyenv root`, or under $PYENV_ROOT when pyenv is not on PATH), else from
# python3.13 on PATH; RUNTIME_PYTHON=/path/to/python3.13 overrides.
RUNTIME_VENV := .venv-runtime
RUNTIME_STAMP := $(RUNTIME_VENV)/.installed
RUNTIME_PYTHON ?= $(shell root=$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}"); \
	v=$$(ls "$$root/versions" 2>/dev/null | grep -E '^3\.13\.[0-9]+$$' | sort -V | tail -n 1); \
	if [ -n "$$v" ]; then echo "$$root/versions/$$v/bin/python3.13"; else command -v python3.13; fi)

$(RUNTIME_STAMP): requirements.txt requirements-runtime.txt
	@test -n "$(RUNTIME_PYTHON)" || { echo "Python 3.13 not found: pyenv install 3.13, or set RUNTIME_PYTHON" >&2; exit 1; }
	$(RUNTIME_PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip --quiet --disable-pip-version-check install -r requirements-runtime.txt
	touch $(RUNTIME_STAMP)

# Azurite, the Azure Storage emulator the tests run against.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m examples.demo

lint: $(STAMP)
	$(BIN)/ruff check aksfw_core aksfw_local function_app.py tests examples bench infra/schema
	$(BIN)/ruff format --check aksfw_core aksfw_local function_app.py tests examples bench infra/schema
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint check-infra $(NODE_STAMP) $(RUNTIME_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The tests that need no Azurite and start no process (tests/conftest.py), in well under a
# minute; a test that starts a process without its `subprocess` mark fails here.
test-fast: $(STAMP)
	AKSFW_TEST_FAST=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not azurite and not subprocess" -q

bench: $(STAMP) $(NODE_STAMP)
	$(PIP) install -r requirements-bench.txt
	$(BIN)/python -m bench $(BENCH_ARGS)

# Everything the targets above set up (the venvs with their stamps, node_modules) and the tools'
# caches: the next `make demo` or `make test` starts as a fresh clone does.
clean:
	rm -rf $(VENV) .venv-checkov .venv-infra $(RUNTIME_VENV) node_modules .pytest_cache .mypy_cache \
		.ruff_cache .hypothesis .grimp_cache .import_linter_cache *.egg-info
