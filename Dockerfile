# dbt-runner: a heavy base layer (OS, Python, dbt and adapters; rarely changes) and a
# thin runtime layer (the entrypoint package; changes often). See README, "The image".
#
#   DOCKER_BUILDKIT=1 docker build --build-arg VARIANT=redshift -t dbt-runner:0.1.0-redshift .
#
# No `# syntax=` line on purpose: the engine's built-in BuildKit frontend is used, so
# builds need no registry beyond the base image (make base-offline makes that too).

ARG BASE_IMAGE=debian:bookworm-slim

# ---- os: the packages the final image runs on ----------------------------------------
FROM ${BASE_IMAGE} AS os
# tini is PID 1 (forwards SIGTERM, reaps zombies); git fetches dbt packages.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini git ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# ---- builder: resolves, downloads and compiles; only its venv ships ---------------------
FROM os AS builder
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip binutils \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY docker/build/with-ca docker/build/slim-venv.sh /usr/local/bin/
ARG UV_VERSION=0.13.8
RUN --mount=type=secret,id=ca_bundle,required=false \
    with-ca pip install --no-cache-dir --target /opt/uv "uv==${UV_VERSION}"
ENV PATH=/opt/uv/bin:$PATH \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/dbt-runner/venv
RUN uv venv --python /usr/bin/python3 /opt/dbt-runner/venv

# The variant's pinned, hash-checked requirement set (docker/build/requirements/*.txt,
# exported from uv.lock by `make requirements`).
ARG VARIANT=all
COPY docker/build/requirements/${VARIANT}.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,required=false \
    with-ca uv pip install --require-hashes --compile-bytecode -r /tmp/requirements.txt \
 && slim-venv.sh /opt/dbt-runner/venv

# ---- base: OS + venv, no compilers, no pip, no uv -----------------------------------------
FROM os AS base
ARG UID=10001
RUN useradd --uid "${UID}" --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin dbt \
 && install -d -m 1777 /out \
 && install -d -m 0755 /opt/dbt-runner/project
COPY --from=builder /opt/dbt-runner/venv /opt/dbt-runner/venv
ENV PATH=/opt/dbt-runner/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false

# ---- app: the entrypoint package, installed into a staging tree ---------------------------
FROM builder AS app
COPY pyproject.toml VERSION README.md /src/
COPY entrypoint /src/entrypoint
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,required=false \
    with-ca uv pip install --no-deps --compile-bytecode \
      --prefix /staging/opt/dbt-runner/venv /src

# ---- runtime: base + the thin layer ----------------------------------------------------
FROM base AS runtime
COPY examples /opt/dbt-runner/examples
COPY --from=app /staging/ /
WORKDIR /opt/dbt-runner/project
# The run's scratch (rendered profile, dbt target and logs) goes to /tmp, so the image
# works with a read-only root filesystem; artifacts and reports go to /out by default.
ENV DBT_RUNNER_WORK_DIR=/tmp/dbt-runner \
    DBT_RUNNER_ARTIFACTS_URL=/out
USER 10001
ENTRYPOINT ["/usr/bin/tini", "--", "dbt-runner"]
CMD ["run"]

ARG VARIANT=all
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/dbt-runner/dbt-runner
ARG DBT_VERSION=unknown
LABEL org.opencontainers.image.title="dbt-runner" \
      org.opencontainers.image.description="Runs a dbt project as a production job: typed settings, run-time credentials, one parse, a run report, notifications." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim" \
      io.dbt-runner.variant="${VARIANT}" \
      io.dbt-runner.dbt-core.version="${DBT_VERSION}"
