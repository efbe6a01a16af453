# Shepherd — the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PYTEST := $(VENV)/bin/pytest
RUFF := $(VENV)/bin/ruff

.PHONY: help venv tools test test-unit test-integration test-e2e lint format dev dev-down bench generate lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q uv
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv from requirements.lock

tools: ## Install/build every external program the tests use (cached in ~/.cache/shepherd)
	hack/install-tools.sh >/dev/null
	hack/build-binaries.sh >/dev/null

test: venv tools ## Run the whole suite (unit, integration, e2e) on real components
	$(PYTEST) tests

test-unit: venv ## Unit tier only (seconds, no processes)
	$(PYTEST) tests/unit

test-integration: venv tools ## Integration tier only
	$(PYTEST) tests/integration

test-e2e: venv tools ## End-to-end tier only
	$(PYTEST) tests/e2e

lint: venv ## ruff check + format check
	$(RUFF) check .
	$(RUFF) format --check .

format: venv ## Apply ruff fixes and formatting
	$(RUFF) check --fix .
	$(RUFF) format .

dev: venv tools ## Start the local control plane, Redis, Prometheus and the operator; apply the CRD and examples
	$(PY) -m tests.harness.dev up

dev-down: venv ## Stop what `make dev` started
	$(PY) -m tests.harness.dev down

bench: venv tools ## Run the benchmarks (tables for BENCHMARKS.md)
	$(PY) -m bench

generate: venv ## Regenerate committed artefacts (CRD, rules, dashboards)
	$(PY) -m hack.generate

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile -q pyproject.toml --extra dev -o requirements.lock --python-version 3.11

clean: dev-down ## Remove the virtualenv (the binary cache in ~/.cache/shepherd is kept)
	rm -rf $(VENV)
