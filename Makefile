# Shepherd — the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PYTEST := $(VENV)/bin/pytest
RUFF := $(VENV)/bin/ruff

# Some machines (CI's among them) set PYTHONDONTWRITEBYTECODE=1: then every process the tests start
# (agent-service, operator, pytest workers) compiles each module it imports from source again, ~5 s
# of CPU per agent-service start. The venv is compiled once at install (--compile-bytecode); the
# project's own modules are cached on first import.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv tools test test-unit test-integration test-e2e lint format dev dev-down demo bench generate lock clean images images-lock test-images

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q uv
	$(UV) pip sync -q --compile-bytecode --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv from requirements.lock

tools: ## Install/build every external program the tests use (cached in ~/.cache/shepherd)
	hack/install-tools.sh >/dev/null
	hack/build-binaries.sh >/dev/null

# Two workers, one test file each at a time: the real components mostly wait (rollouts, leases,
# scrapes), so two files overlap on two cores; each worker starts its own control plane and Redis.
PARALLEL := -n 2 --dist loadfile --durations=15

test: venv tools ## Run the whole suite (unit, integration, e2e) on real components
	$(PYTEST) $(PARALLEL) tests

test-unit: venv ## Unit tier only (seconds, no processes)
	$(PYTEST) tests/unit

test-integration: venv tools ## Integration tier only
	$(PYTEST) $(PARALLEL) tests/integration

test-e2e: venv tools ## End-to-end tier only
	$(PYTEST) $(PARALLEL) tests/e2e

lint: venv ## ruff check + format check
	$(RUFF) check .
	$(RUFF) format --check .

format: venv ## Apply ruff fixes and formatting
	$(RUFF) check --fix .
	$(RUFF) format .

dev: venv tools ## The whole product live: control plane, Redis, Prometheus, Shepherd, the examples' agents (prints their URLs)
	$(PY) -m tests.harness.dev up

dev-down: venv ## Stop what `make dev` started
	$(PY) -m tests.harness.dev down

demo: venv ## On `make dev`: the error-budget story live (outage, freeze, held change, recovery), ~3 min
	$(PY) -m tests.harness.demo

bench: venv tools ## Run the benchmarks (tables for BENCHMARKS.md)
	$(PY) -m bench

generate: venv ## Regenerate committed artefacts (CRD, rules, dashboards)
	$(PY) hack/generate.py

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile -q pyproject.toml --extra dev -o requirements.lock --python-version 3.11

clean: dev-down ## Remove the virtualenv (the binary cache in ~/.cache/shepherd is kept)
	rm -rf $(VENV)

# --- container images (hack/build-images.sh; docs: images/*.Containerfile) ---------------------------
IMAGE_LOCKS := $(patsubst images/%.in,images/%.requirements.txt,$(wildcard images/*.in))

images: venv ## Build the operator and agent-service images offline (buildah) into build/images/*.oci.tar
	PYTHON=$(abspath $(PY)) hack/build-images.sh

test-images: venv ## Build the images and run their tests (part of `make test` too)
	$(PYTEST) tests/integration/images

images-lock: $(IMAGE_LOCKS) ## Re-derive the images' hashed requirement sets from requirements.lock

$(IMAGE_LOCKS): | $(VENV)/.installed

images/build.requirements.txt: images/build.in
	$(UV) pip compile -q $< --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --custom-compile-command "make images-lock" -o $@

images/%.requirements.txt: images/%.in requirements.lock
	$(UV) pip compile -q $< -c requirements.lock --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --custom-compile-command "make images-lock" -o $@
