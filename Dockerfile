# dbt-runner: a heavy base image (OS, Python, dbt and adapters; rarely changes) and a
# thin runtime layer (the dbt_runner package in entrypoint/; changes often). See README, "The image".
#
#   make image VARIANT=redshift              base (when new) + runtime, this platform
#   make image PLATFORMS=linux/amd64,linux/arm64
#
# The base is its own image, dbt-runner-base:<variant>-<hash of what it holds>
# (`--target base`); the runtime builds FROM it (RUNTIME_BASE), so an entrypoint change
# rebuilds and pushes one thin layer. Without RUNTIME_BASE it builds FROM this file's
# own base stage. No `# syntax=` line on purpose: the engine's built-in BuildKit
# frontend is used, so builds need no registry beyond the OS image (make base-offline
# makes that too).

# checkov:skip=CKV_DOCKER_2: a batch job, not a service: it runs, reports and exits; ECS and Kubernetes watch the process, there is nothing to probe
# checkov:skip=CKV_DOCKER_7: the base images are build arguments the Makefile pins (debian:bookworm-slim, the hashed dbt-runner-base tag), never latest
ARG BASE_IMAGE=debian:bookworm-slim
ARG RUNTIME_BASE=base

# ---- os: the packages the final image runs on ----------------------------------------
FROM ${BASE_IMAGE} AS os
# tini is PID 1 (forwards SIGTERM, reaps zombies); git fetches dbt packages.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini git ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# ---- tools: uv and the SBOM generator; never shipped ----------------------------------
FROM os AS tools
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip binutils \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY docker/build/with-ca docker/build/slim-venv.sh docker/build/sbom.py /usr/local/bin/
ARG UV_VERSION=0.13.8
RUN --mount=type=secret,id=ca_bundle,required=false \
    with-ca pip install --no-cache-dir --target /opt/uv "uv==${UV_VERSION}"
# No time limit on compiling bytecode: under emulation on a busy machine a Python
# interpreter can take over uv's default 60 s to start (slower, never red).
ENV PATH=/opt/uv/bin:$PATH \
    UV_COMPILE_BYTECODE_TIMEOUT=0 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/dbt-runner/venv
WORKDIR /src
COPY pyproject.toml uv.lock /src/
# CycloneDX's generator, hash-checked from uv.lock's `sbom` group, in its own venv.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,required=false \
    uv export --frozen --only-group sbom --no-emit-project --quiet -o /tmp/sbom.txt \
 && uv venv --quiet /opt/sbom \
 && with-ca uv pip install --quiet --python /opt/sbom/bin/python --require-hashes -r /tmp/sbom.txt

# ---- venv: the variant's locked requirement set, straight from uv.lock -----------------
FROM tools AS venv
ARG VARIANT=all
# uv sync checks every wheel against the hashes in uv.lock.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,required=false \
    with-ca uv sync --frozen --no-install-project --no-dev --extra "${VARIANT}" --compile-bytecode \
 && slim-venv.sh /opt/dbt-runner/venv

# ---- base-sbom: the OS packages and the venv, as CycloneDX -----------------------------
FROM tools AS base-sbom
COPY --from=venv /opt/dbt-runner/venv /opt/dbt-runner/venv
COPY --from=os /var/lib/dpkg/status /tmp/dpkg-status
RUN /opt/sbom/bin/cyclonedx-py environment --output-reproducible --of JSON \
      -o /tmp/python.cdx.json /opt/dbt-runner/venv/bin/python \
 && /opt/sbom/bin/python /usr/local/bin/sbom.py base /tmp/python.cdx.json /tmp/dpkg-status \
      /opt/dbt-runner/sbom.base.cdx.json

# ---- base: OS + venv + its SBOM; no compilers, no pip, no uv (its own image) ------------
FROM os AS base
ARG UID=10001
RUN useradd --uid "${UID}" --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin dbt \
 && install -d -m 1777 /out \
 && install -d -m 0755 -o "${UID}" -g 0 /opt/dbt-runner/project
COPY --from=venv /opt/dbt-runner/venv /opt/dbt-runner/venv
COPY --from=base-sbom /opt/dbt-runner/sbom.base.cdx.json /opt/dbt-runner/sbom.base.cdx.json
ENV PATH=/opt/dbt-runner/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
ARG VARIANT=all
LABEL io.dbt-runner.variant="${VARIANT}" \
      org.opencontainers.image.title="dbt-runner-base"

# ---- the base the runtime builds on: the stage above, or a published base image -------
# hadolint ignore=DL3006
FROM ${RUNTIME_BASE} AS runtime-base

# ---- app: the dbt_runner package and the final SBOM, in a staging tree ----------------
FROM tools AS app
COPY VERSION README.md /src/
COPY entrypoint /src/entrypoint
# An empty venv at the final path: the console script's shebang points there.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,required=false \
    uv venv --quiet /opt/dbt-runner/venv \
 && with-ca uv pip install --no-deps --compile-bytecode \
      --python /opt/dbt-runner/venv/bin/python --prefix /staging/opt/dbt-runner/venv /src
COPY --from=runtime-base /opt/dbt-runner/sbom.base.cdx.json /tmp/sbom.base.cdx.json
RUN /opt/sbom/bin/python /usr/local/bin/sbom.py runner /tmp/sbom.base.cdx.json \
      "$(cat /src/VERSION)" /staging/opt/dbt-runner/sbom.cdx.json

# ---- runtime: base + the thin layer ----------------------------------------------------
FROM runtime-base AS runtime
# What `dbt-runner prepare` bakes, outside the project folder: a project mounted over a
# derived image's does not hide it (the run says what differs from it). Before the
# package's layer, so that a change to the package rebuilds that one layer alone.
RUN install -d -m 0755 -o 10001 -g 0 /opt/dbt-runner/prepared
COPY examples /opt/dbt-runner/examples
COPY --from=app /staging/ /
WORKDIR /opt/dbt-runner/project
# The run's scratch (rendered profile, dbt target and logs) goes to /tmp, so the image
# works with a read-only root filesystem; artifacts and reports go to /out by default.
ENV DBT_RUNNER_WORK_DIR=/tmp/dbt-runner \
    DBT_RUNNER_ARTIFACTS_URL=/out \
    DBT_RUNNER_PREPARED_DIR=/opt/dbt-runner/prepared
USER 10001
ENTRYPOINT ["/usr/bin/tini", "--", "dbt-runner"]
CMD ["run"]

ARG VARIANT=all
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/dbt-runner/dbt-runner
ARG DBT_VERSION=unknown
ARG BASE_REF=base
LABEL org.opencontainers.image.title="dbt-runner" \
      org.opencontainers.image.description="Runs a dbt project as a production job: typed settings, run-time credentials, one parse, a run report, notifications." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_REF}" \
      io.dbt-runner.variant="${VARIANT}" \
      io.dbt-runner.dbt-core.version="${DBT_VERSION}" \
      io.dbt-runner.sbom="/opt/dbt-runner/sbom.cdx.json"
