# The verbs people type. `make help` lists them.
SHELL := /bin/bash
comma := ,
.DEFAULT_GOAL := help

# uv: the one on PATH, else the version the project pins, brought into .tools/ from the
# package index (Python 3.11 and its pip are all a fresh machine needs).
UV_VERSION := 0.13.8
UV_LOCAL := $(CURDIR)/.tools/uv-$(UV_VERSION)/bin/uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_LOCAL))
VENV := .venv
PY := $(VENV)/bin/python
VERSION := $(shell cat VERSION)

# The demo job, without Docker: DuckDB and a local folder.
OUT ?= $(CURDIR)/out

# The image. DOCKER must be a client with BuildKit: Debian's docker.io has it built in
# at /usr/bin/docker (another client on PATH may lack buildx); elsewhere, `docker`.
DOCKER ?= $(if $(wildcard /usr/bin/docker),/usr/bin/docker,docker)
IMAGE ?= dbt-runner
VARIANTS := all redshift bigquery
VARIANT ?=
HOST_ARCH := $(shell uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
# Comma-separated; another platform than this machine's builds under QEMU emulation.
PLATFORMS ?= linux/$(HOST_ARCH)
PLATFORM ?=
# The variant the test suite also builds and runs for arm64 (emulated builds are slow).
ARM64_VARIANT ?= redshift
BASE_IMAGE ?= debian:bookworm-slim
# A CA bundle for builds behind a TLS-intercepting proxy (a corporate network): passed
# as a build secret, never a layer. By default this machine's trust store, so `make run`
# works behind such a proxy as it does without one; BUILD_CA_BUNDLE= turns it off.
BUILD_CA_BUNDLE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time, not the build's: rebuilding a commit reproduces its labels and cache.
CREATED := $(shell git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo 1970-01-01T00:00:00Z)
SOURCE ?= https://github.com/dbt-runner/dbt-runner
image_tag = $(IMAGE):$(VERSION)-$(1)
BUILD_ENV = DOCKER=$(DOCKER) IMAGE=$(IMAGE) VERSION=$(VERSION) BASE_IMAGE=$(BASE_IMAGE) UV=$(UV) \
  BUILD_CA_BUNDLE=$(BUILD_CA_BUNDLE) REVISION=$(REVISION) CREATED=$(CREATED) SOURCE=$(SOURCE)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(UV_LOCAL):
	@echo "uv is not on PATH: installing uv $(UV_VERSION) into .tools/ (pip, from the package index)"
	python3 -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools/uv-$(UV_VERSION) "uv==$(UV_VERSION)"

.PHONY: uv
uv: | $(UV) ## bring uv (the pinned version into .tools/ when none is on PATH)

$(VENV)/.synced: pyproject.toml uv.lock VERSION | $(UV)
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
lint: venv ## ruff, mypy, hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

.PHONY: check
check: lint unit ## the inner loop: lint and the unit tests (under a minute)

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

.PHONY: base-offline
base-offline: ## build $(BASE_IMAGE) from Debian's packages (no registry); PLATFORM=linux/arm64 too
	DOCKER=$(DOCKER) docker/build/base-offline.sh $(BASE_IMAGE) $(PLATFORM)

.PHONY: image
image: | $(UV) ## build the image: every variant (or VARIANT=redshift), for PLATFORMS (default: this machine's)
	@DOCKER=$(DOCKER) docker/build/need.sh docker
	@for v in $(or $(VARIANT),$(VARIANTS)); do \
	  for p in $(subst $(comma), ,$(PLATFORMS)); do \
	    $(BUILD_ENV) docker/build/image.sh $$v $$p || exit 1; \
	  done; \
	done

.PHONY: run
run: ## build the image if needed, run the demo job in it on DuckDB; outputs in ./out
	@DOCKER=$(DOCKER) docker/build/need.sh run
	@$(MAKE) --no-print-directory image VARIANT=$(or $(VARIANT),all)
	@mkdir -p $(OUT)
	$(DOCKER) run --rm --user $$(id -u):$$(id -g) -v $(OUT):/out \
	  -e DBT_RUNNER_PROJECT_DIR=/opt/dbt-runner/examples/demo \
	  -e DBT_RUNNER_WAREHOUSE__PATH=/out/demo.duckdb \
	  $(call image_tag,$(or $(VARIANT),all)) run

# Sanity workers: its tests mostly wait on containers; each has its own registry,
# tags and container names.
SANITY_WORKERS ?= 2

.PHONY: sanity
sanity: venv ## the sanity suite against the built images (make image, and for ARM64_VARIANT PLATFORMS=linux/arm64)
	DBT_RUNNER_IMAGE=$(IMAGE):$(VERSION) DBT_RUNNER_ARM64_VARIANT=$(ARM64_VARIANT) \
	  $(BUILD_ENV) $(PY) -m pytest -n $(SANITY_WORKERS) --dist worksteal tests/sanity \
	  --junitxml=build/test-results/sanity.xml

# A peer tool in a venv of its own, from docker/deploy/<tool>/requirements.txt: never in
# the image, never in the runner's venv.
.venv-%/.synced: docker/deploy/%/requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python 3.11 .venv-$*
	$(UV) pip install --quiet --python .venv-$*/bin/python -r $<
	@touch $@

.PHONY: airflow-venv dagster-venv
airflow-venv: .venv-airflow/.synced ## Airflow in its own venv, to validate the example DAG
dagster-venv: .venv-dagster/.synced ## Dagster and dagster-dbt in their own venv, to materialize the example assets

CHECKOV_VENV := .venv-checkov

$(CHECKOV_VENV)/.synced: docker/deploy/checkov-requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python 3.11 $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python -r $<
	@touch $@

.PHONY: checkov-venv
checkov-venv: $(CHECKOV_VENV)/.synced ## checkov in its own venv, to check the stack, Dockerfile, manifests, workflows

# Test workers: one per core by default (a test's time is mostly a dbt process, which
# keeps one core busy at most).
TEST_WORKERS ?= auto

.PHONY: need-test
need-test:
	@DOCKER=$(DOCKER) BASE_IMAGE=$(BASE_IMAGE) docker/build/need.sh test

.PHONY: test
test: need-test lint airflow-venv checkov-venv dagster-venv ## lint, every test, the images (amd64, and arm64 for one variant) and their sanity suite
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal tests/unit tests/integration
	$(MAKE) --no-print-directory -j2 --output-sync=target test-images
	$(MAKE) sanity

# The images the sanity suite runs, both at once: this machine's (every variant) and the
# emulated arm64 one (its slow part is the emulated CPU, the other's the network).
.PHONY: test-images test-image-host test-image-arm64
test-images: test-image-host test-image-arm64
test-image-host:
	$(MAKE) --no-print-directory image
test-image-arm64:
	$(MAKE) --no-print-directory image VARIANT=$(ARM64_VARIANT) PLATFORMS=linux/arm64

# Releases: REGISTRY=host/repository, TICKET=DATA-123, ENV=prod (see README, Releases).
REGISTRY ?=
TICKET ?=
ENV ?=
RELEASE := DOCKER=$(DOCKER) $(PY) docker/release/release.py

.PHONY: release
release: venv ## push each variant's index for PLATFORMS, its base when new, and the immutable ticket tag (TICKET= REGISTRY=)
	$(RELEASE) release --registry "$(REGISTRY)" --ticket "$(TICKET)" --image $(IMAGE) \
	  --version $(VERSION) --variants $(or $(VARIANT),$(VARIANTS)) --platforms $(PLATFORMS)

.PHONY: promote
promote: venv ## point ENV-VARIANT at TICKET's image by digest, no rebuild (ENV= TICKET= REGISTRY=)
	$(RELEASE) promote --registry "$(REGISTRY)" --env "$(ENV)" --ticket "$(TICKET)" \
	  --variants $(or $(VARIANT),$(VARIANTS))

.PHONY: rollback
rollback: venv ## point ENV-VARIANT back at an earlier TICKET's image (ENV= TICKET= REGISTRY=)
	$(RELEASE) rollback --registry "$(REGISTRY)" --env "$(ENV)" --ticket "$(TICKET)" \
	  --variants $(or $(VARIANT),$(VARIANTS))

.PHONY: releases
releases: venv ## list tickets, versions, digests and the environments running them (REGISTRY=)
	$(RELEASE) releases --registry "$(REGISTRY)"

.PHONY: bench
bench: venv ## benchmarks (ratios, same run): the job, slim, fresh, lint, start-up, image, run page, impact, own seconds, scale, baked parse, backstop, children
	$(PY) benchmarks/bench_runner.py
	$(PY) benchmarks/bench_slim.py
	$(PY) benchmarks/bench_slim.py --models 2000
	$(PY) benchmarks/bench_slim.py --cpus 1
	$(PY) benchmarks/bench_slim.py --models 2000 --cpus 1
	$(PY) benchmarks/bench_fresh.py
	$(PY) benchmarks/bench_lint.py
	DOCKER=$(DOCKER) BUILD_CA_BUNDLE=$(BUILD_CA_BUNDLE) $(PY) benchmarks/bench_image.py --platforms linux/amd64,linux/arm64
	$(PY) benchmarks/bench_report_html.py
	$(PY) benchmarks/bench_report_html.py --nodes 20000
	$(PY) benchmarks/bench_impact.py
	$(PY) benchmarks/bench_own.py
	$(PY) benchmarks/bench_scale.py --models 500
	$(PY) benchmarks/bench_scale.py --models 2000
	$(PY) benchmarks/bench_scale.py --models 10000
	DOCKER=$(DOCKER) $(PY) benchmarks/bench_baked.py
	$(PY) benchmarks/bench_backstop.py
	$(PY) benchmarks/bench_children.py --models 500
	$(PY) benchmarks/bench_children.py --models 2000

.PHONY: clean
clean: ## remove local outputs
	rm -rf out build .pytest_cache .mypy_cache .ruff_cache .tools

.PHONY: docs
docs: venv ## regenerate docs/settings.md's tables from the settings model
	$(PY) docs/settings_doc.py

.PHONY: schema
schema: venv ## regenerate docs/report.schema.json from the RunReport model
	$(PY) -c "from dbt_runner.report.model import report_schema; print(report_schema(), end='')" > docs/report.schema.json
