# The front door: the same commands in README, CI and your terminal.
#   make run    - set everything up and walk through tsunagu's main job on the local stack
#   make test   - lint, type-check, template checks and the whole pytest suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam

.PHONY: browser-deps run serve demo test lint typecheck template build openapi openapi-check pytest unit integration e2e bench clean

$(VENV)/.installed: requirements/dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# SAM CLI pins older boto3/pydantic: it lives in its own virtual environment.
$(SAM_VENV)/.installed: requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check -r requirements/sam.txt
	@touch $@

run: $(VENV)/.installed
	$(PY) -m tsunagu_local demo

demo: run

serve: $(VENV)/.installed
	$(PY) -m tsunagu_local serve

test: lint typecheck template openapi-check pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

template: $(VENV)/.installed $(SAM_VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region ap-northeast-1

build: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM) build --region ap-northeast-1

openapi: $(VENV)/.installed
	$(PY) -m tsunagu_local.openapi > docs/openapi.json

openapi-check: $(VENV)/.installed
	@$(PY) -m tsunagu_local.openapi | diff -u docs/openapi.json - \
	  || { echo "docs/openapi.json is stale: run 'make openapi'"; exit 1; }

# The contract run (tests/integration/test_contract.py): examples per operation and hypothesis's
# seed, fixed here so a failure reproduces with the same command.
SCHEMATHESIS_EXAMPLES ?= 10
SCHEMATHESIS_SEED ?= 20261203

pytest: $(VENV)/.installed browser-deps
	SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) SCHEMATHESIS_SEED=$(SCHEMATHESIS_SEED) $(PY) -m pytest

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

e2e: $(VENV)/.installed
	$(PY) -m pytest tests/e2e

bench: $(VENV)/.installed
	$(PY) bench/cold_start.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

# The link page's browser test uses Debian's Chromium and its driver (no browser download).
# Without root (apt) the test is skipped locally; CI installs them and requires the test.
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	  fonts-noto-cjk; } || echo "warning: could not install chromium (not root?): the browser test will be skipped"
