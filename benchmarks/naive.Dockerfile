# The baseline for benchmarks/bench_image.py: what a team writes first. One stage,
# default apt recommends, pip into a venv with its cache, compilers and pip kept.
# naive-requirements.txt is the variant's locked set (`uv export`), written by the
# benchmark. (--no-deps: the set is complete; pip 23 mis-reads extras with hashes.)
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008,DL3009,DL3015
RUN apt-get update && apt-get install -y python3 python3-pip python3-venv git ca-certificates tini
COPY naive-requirements.txt /tmp/requirements.txt
COPY pyproject.toml VERSION README.md /src/
COPY entrypoint /src/entrypoint
# hadolint ignore=DL3042
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && python3 -m venv /venv \
 && /venv/bin/pip install --no-deps -r /tmp/requirements.txt \
 && /venv/bin/pip install --no-deps /src
ENV PATH=/venv/bin:$PATH
ENTRYPOINT ["tini", "--", "dbt-runner"]
