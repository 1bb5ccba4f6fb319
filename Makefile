# ml-platform: `make plan STACK=dev` (offline plan) and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))
# Pinned upstream CRDs (see ../shared/reference/VERSIONS.md); override to point elsewhere.
CRD_SCHEMA_DIR ?= $(abspath ../shared/reference/crds)
export CRD_SCHEMA_DIR

.PHONY: plan plans plan-diff bench docs test lint fmt typecheck pytest clean

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ml-platform needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

plan: $(VENV)/.installed  ## offline plan of one stack: build/$(STACK)/
	$(PY) tools/plan.py $(STACK)

plans: $(VENV)/.installed  ## offline plan of every stack
	@set -e; for s in $(STACKS); do $(PY) tools/plan.py $$s; done

plan-diff: $(VENV)/.installed  ## resource counts and cost/capacity figures of every stack: BASE=<git ref> vs the working tree
	@test -n "$(BASE)" || { echo "usage: make plan-diff BASE=<git ref> (e.g. HEAD~1, origin/main)" >&2; exit 1; }
	@$(PY) tools/plan_diff.py "$(BASE)"

bench: $(VENV)/.installed  ## time the prod plan with 10, 100 and 500 generated teams (a benchmark, never fails)
	$(PY) tools/bench.py

docs: $(VENV)/.installed  ## regenerate docs/configuration.md from the config models
	$(PY) tools/config_docs.py

lint: $(VENV)/.installed  ## ruff; actionlint on the workflows (with shellcheck on their scripts, and the inputs of the actions they use)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/actionlint

fmt: $(VENV)/.installed  ## fix what ruff can fix, and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed
	$(PY) -m pytest

test: lint typecheck pytest  ## everything CI runs

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
