# The verbs people type. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
VENV := .venv
PY := $(VENV)/bin/python
VERSION := $(shell cat VERSION)

# The demo job, without Docker: DuckDB and a local folder.
OUT ?= $(CURDIR)/out

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock VERSION
	$(UV) sync --frozen --all-extras
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create the development environment (uv, locked)

.PHONY: lock
lock: ## re-lock dependencies after editing pyproject.toml
	$(UV) lock

.PHONY: run-local
run-local: venv ## run the demo job on DuckDB without Docker; outputs in ./out
	DBT_RUNNER_PROJECT_DIR=examples/demo \
	DBT_RUNNER_ARTIFACTS_URL=$(OUT) \
	DBT_RUNNER_WAREHOUSE__PATH=$(OUT)/demo.duckdb \
	$(VENV)/bin/dbt-runner run

.PHONY: lint
lint: venv ## ruff, mypy (and hadolint once there is a Dockerfile)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@if [ -f Dockerfile ]; then $(VENV)/bin/hadolint Dockerfile; fi

.PHONY: format
format: venv ## apply ruff's formatting and fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: unit
unit: venv ## unit tests (no I/O)
	$(PY) -m pytest tests/unit

.PHONY: integration
integration: venv ## integration tests: real dbt, PostgreSQL
	$(PY) -m pytest tests/integration

.PHONY: test
test: lint ## lint and every test
	$(PY) -m pytest tests/unit tests/integration

.PHONY: bench
bench: venv ## benchmarks: runner vs. the shell-script way, version start-up (ratios)
	$(PY) benchmarks/bench_runner.py

.PHONY: clean
clean: ## remove local outputs
	rm -rf out build .pytest_cache .mypy_cache .ruff_cache

.PHONY: schema
schema: venv ## regenerate docs/report.schema.json from the RunReport model
	$(PY) -c "from entrypoint.report import report_schema; print(report_schema(), end='')" > docs/report.schema.json
