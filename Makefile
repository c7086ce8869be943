# One entry point. `make test` and `make deploy` install what is missing (a venv from
# pyproject.toml, Anvil from package-lock.json) and re-install only when those files change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# Ape finds vyper and anvil on PATH only.
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup test deploy lint coverage clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# `npm install`, not `npm ci`: the registry reachable here serves only the linux-amd64 Anvil binary,
# so the lock file lists that optional package alone and `npm ci` calls it out of sync. The version
# and integrity hashes still come from package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

test: setup
	ape test $(TEST_ARGS)

# ruff for Python; natrix for the shipped contracts. NTX11 (arguments must start with `_`) is off:
# our style prefixes internal functions and storage, not arguments.
lint: setup
	ruff check src tests scripts
	ruff format --check src tests scripts
	natrix lint --disable NTX11 -- contracts/LedgerAdjudicator.vy contracts/VirtualAdjudicator.vy contracts/modules

# Statement coverage per Vyper source (table at the end of the run).
coverage: setup
	ape test --coverage $(TEST_ARGS)

deploy: setup
	ape run deploy --network ethereum:local:foundry --account TEST::0

clean:
	rm -rf $(VENV) node_modules .build .pytest_cache .hypothesis src/*.egg-info
