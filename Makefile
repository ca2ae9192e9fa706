# batchhub: `make run` starts the whole product on this machine; `make test` runs the suite.
# Both bootstrap what they need (.venv, Python deps, the Node proxy), idempotently.

# Debian's python3 when present: per-user accounts must be able to run the venv's interpreter
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
LABEXT := $(VENV)/share/jupyter/labextensions/batchhub-lab
VALUES ?=
STATE_DIR ?= state
PYTEST_ARGS ?=

.PHONY: run bootstrap bootstrap-test k8s-testenv test lint format schema clean-state bench

run: bootstrap
	@echo "batchhub: state in $(STATE_DIR)/; values: $(or $(VALUES),hub_config/values.yaml)"
	BATCHHUB_VALUES="$(VALUES)" BATCHHUB_STATE_DIR="$(STATE_DIR)" \
		exec $(BIN)/jupyterhub -f hub_config/jupyterhub_config.py

bootstrap: $(VENV)/.run-deps $(VENV)/.user-site node_modules/.installed $(LABEXT)/package.json

bootstrap-test: bootstrap $(VENV)/.test-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# pip installs with the system's packages out of sight, so every dependency comes from PyPI as
# the project asks (never an older Debian python3-* one); afterwards the venv sees them again.
VENV_ISOLATED := $(PYTHON) -m venv --without-pip $(VENV)
VENV_OPEN := $(PYTHON) -m venv --without-pip --system-site-packages $(VENV)

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(VENV_ISOLATED)
	$(BIN)/pip install -q -e .
	$(VENV_OPEN)
	touch $@

$(VENV)/.test-deps: pyproject.toml $(VENV)/.run-deps
	$(VENV_ISOLATED)
	$(BIN)/pip install -q -e '.[test]'
	$(VENV_OPEN)
	touch $@

# User site-packages visible in the venv (a venv hides them unless it includes the system's):
# `pip install --user x` in a user's kernel then lasts for their later runs, as in a plain Python.
$(VENV)/.user-site: | $(BIN)/python
	$(VENV_OPEN)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# batchhub's JupyterLab extension (labextension/: Create Job's time limit, the Batch queue panel),
# built by @jupyterlab/builder against the venv's JupyterLab and installed where its JupyterLab
# looks; rebuilt only when its sources change. The builder's own CLI is called because
# `jupyter labextension build` of JupyterLab 4.6 hands over to a separate jupyter-builder tool.
LABEXT_SOURCES := $(wildcard labextension/src/*.js labextension/style/*.css) labextension/package.json
JUPYTERLAB_STAGING = $(shell $(BIN)/python -c \
	'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')

labextension/node_modules/.installed: labextension/package.json labextension/package-lock.json
	cd labextension && npm ci --no-audit --no-fund
	touch $@

$(LABEXT)/package.json: $(LABEXT_SOURCES) labextension/node_modules/.installed $(VENV)/.run-deps
	rm -rf labextension/dist
	labextension/node_modules/.bin/build-labextension --core-path "$(JUPYTERLAB_STAGING)" labextension
	rm -rf $(LABEXT)
	mkdir -p $(dir $(LABEXT))
	cp -r labextension/dist/batchhub-lab $(LABEXT)

# The Kubernetes tests' control plane, built from Go modules once and cached by version
# (~/.cache/batchhub/k8s); a later run finds it at once.
k8s-testenv:
	bash k8s-testenv/build.sh >/dev/null

test: bootstrap-test k8s-testenv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: bootstrap-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: bootstrap-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# helm/batchhub/values.schema.json from the one schema (hub_config/values.schema.yaml)
schema: bootstrap
	$(BIN)/python -m hub_config.schema

clean-state:
	rm -rf $(STATE_DIR)

# Every benchmark in turn, then one table of all their figures (bench/_table.py). A script that
# crashes is noted and the others still run; the exit status is then non-zero (a figure below
# its goal is not a crash). BENCH_ARGS goes to every script, e.g. BENCH_ARGS=--quick.
BENCH_JSON := $(STATE_DIR)/bench.jsonl
BENCH_SCRIPTS := scheduler_pass simulate_policies service_throughput service_joblist \
	spawn_latency runner_overhead data_uploads kube_spawn_latency sweeps sweep_results_page \
	lab_create_job
BENCH_ARGS ?=

bench: bootstrap-test
	@mkdir -p $(STATE_DIR) && rm -f $(BENCH_JSON); crashed=""; \
	for script in $(BENCH_SCRIPTS); do \
		echo "== bench/$$script.py $(BENCH_ARGS)"; \
		if [ $$script = kube_spawn_latency ] && ! $(MAKE) --no-print-directory k8s-testenv; then \
			crashed="$$crashed $$script(k8s-testenv)"; continue; \
		fi; \
		BATCHHUB_BENCH_JSON="$(abspath $(BENCH_JSON))" $(BIN)/python bench/$$script.py \
			$(BENCH_ARGS) || crashed="$$crashed $$script"; \
	done; \
	echo; echo "== all figures (medians; baselines measured in the same run)"; \
	$(BIN)/python bench/_table.py $(BENCH_JSON); \
	if [ -n "$$crashed" ]; then echo "crashed:$$crashed"; exit 1; fi
