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

.PHONY: setup demo test deploy lint coverage gas abis bench loadtest scaling mutation clean

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

# The whole system on a fresh local chain: deploy, channels, payments, disputes, every balance checked.
# Options through DEMO_ARGS, e.g. DEMO_ARGS='--users 5 --payments 10000'.
demo: setup
	ape run demo --network ethereum:local:foundry $(DEMO_ARGS)

test: setup
	ape test $(TEST_ARGS)

# ruff for Python; natrix for the shipped contracts. NTX11 (arguments must start with `_`) is off:
# our style prefixes internal functions and storage, not arguments. NTX10 (unused argument) is off for the
# apps only: an app implements IApp and takes every argument of valid_transition, used or not.
lint: setup
	ruff check src tests scripts tools
	ruff format --check src tests scripts tools
	natrix lint --disable NTX11 -- contracts/LedgerAdjudicator.vy contracts/VirtualAdjudicator.vy contracts/AppAdjudicator.vy contracts/modules
	natrix lint --disable NTX11 NTX10 -- contracts/apps

# Statement coverage per Vyper source. One `ape test --coverage` process per test module (Ape holds
# every trace of a session in memory), each saving its statement report (tests/conftest.py), then one
# merged table (tools/coverage_merge.py). The stateful fuzzers are left out: traced, they take hours.
# The off-chain suites (client, hub node, watchtower, deploy and demo scripts, some as subprocesses) add no
# contract statement the unit, scenario and adversarial suites miss, and are left out too.
COVERAGE_MODULES = $(shell find tests -name 'test_*.py' -not -path 'tests/stateful/*' -not -path 'tests/client/*' \
	-not -path 'tests/watchtower/*' -not -path 'tests/deploy/*' -not -path 'tests/demo/*' -not -path 'tests/node/*' | sort)
# Changes the node's chain id mid-test; Ape's traced calls keep signing with the chain id it connected
# with and fail. It runs in `make test`; docs/COVERAGE.md names the one branch only it reaches.
COVERAGE_DESELECT = --deselect tests/adversarial/test_replay.py::test_replay__chain_id_change_on_same_node__separator_follows_and_old_signatures_stop
coverage: setup
	rm -rf .build/coverage-parts && mkdir -p .build/coverage-parts
	set -e; for module in $(COVERAGE_MODULES); do \
		PERUN_COVERAGE_JSON=.build/coverage-parts/$$(echo $$module | tr / _).json \
			ape test $$module --coverage -q -p no:cacheprovider $(COVERAGE_DESELECT) > .build/coverage-parts/last.log 2>&1 \
			|| { tail -n 40 .build/coverage-parts/last.log; exit 1; }; \
		tail -n 1 .build/coverage-parts/last.log; \
	done
	python tools/coverage_merge.py .build/coverage-parts/*.json

# The standard lifecycles on a fresh Anvil: rewrites docs/gas.json and docs/GAS.md.
gas: setup
	ape run gas --network ethereum:local:foundry

# The shipped contracts' ABIs as package data (src/perun_vyper/abi/*.json), from the compiled contracts; run it
# after changing a contract's interface (tests/deploy/test_package.py fails until then).
abis: setup
	python tools/export_abis.py

# Off-chain payments per second (sign, verify, persist on both sides), pinned to one core when taskset
# exists; README "Off-chain speed". Options through BENCH_ARGS, e.g. BENCH_ARGS='--payments 50000 --profile'.
TASKSET := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 0)
bench: setup
	$(TASKSET) python -m perun_vyper.tools.bench $(BENCH_ARGS)

# The hub as a service under load (README "Hub service load"): Anvil, `ape run deploy`, WORKERS `ape run hub`
# processes on a STORE (sqlite: one worker; postgres: a PostgreSQL server started with pgserver, any number
# of workers) and CLIENTS wallets in PROCESSES client processes paying for SECONDS, every balance checked at
# the end; a hard time limit ends every process it started. More options through LOADTEST_ARGS, e.g.
# LOADTEST_ARGS='--rate 20 --virtual-rate 0 --json load.json'.
CLIENTS ?= 100
PROCESSES ?= 4
SECONDS ?= 20
WORKERS ?= 1
STORE ?= sqlite
loadtest: setup
	python -m perun_vyper.tools.loadtest --clients $(CLIENTS) --processes $(PROCESSES) --seconds $(SECONDS) \
		--workers $(WORKERS) --store $(STORE) $(LOADTEST_ARGS)

# What one store carries on the hub's update path (docs/SCALING.md): SQLite with one writer, PostgreSQL
# (pgserver, a real server) with WRITERS writer processes. Options through SCALING_ARGS.
WRITERS ?= 1,2
scaling: setup
	python -m perun_vyper.tools.scaling --writers $(WRITERS) $(SCALING_ARGS)

# Mutation testing of the shipped contracts and modules (docs/MUTATION.md): every mutant against the contract
# suites in MUTATION_JOBS worker sessions, then the report. Results are cached in .build/mutation, so an
# interrupted run resumes; options through MUTATION_ARGS, e.g. MUTATION_ARGS='--fresh' or '--only ID,ID'.
MUTATION_JOBS ?= 2
mutation: setup
	python -m perun_vyper.tools.mutation --jobs $(MUTATION_JOBS) $(MUTATION_ARGS)

deploy: setup
	ape run deploy --network ethereum:local:foundry --account TEST::0

clean:
	rm -rf $(VENV) node_modules .build .pytest_cache .hypothesis src/*.egg-info build dist
