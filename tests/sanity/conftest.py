"""The sanity suite's fixtures: the built image, a container of it, docker itself."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import testinfra

from tests.support import ROOT

VERSION = (ROOT / "VERSION").read_text().strip()
# The image under test, without its variant suffix (make sanity sets it).
IMAGE = os.environ.get("DBT_RUNNER_IMAGE", f"dbt-runner:{VERSION}")
DOCKER = os.environ.get("DOCKER", "docker")
VARIANTS = {
    "all": {"duckdb", "postgres", "redshift", "bigquery"},
    "redshift": {"postgres", "redshift"},  # dbt-redshift is built on dbt-postgres
    "bigquery": {"bigquery"},
}
UID = 10001
# The variant the suite also builds and runs for arm64, under emulation (make test).
ARM64_VARIANT = os.environ.get("DBT_RUNNER_ARM64_VARIANT", "redshift")


def image_of(variant: str) -> str:
    return f"{IMAGE}-{variant}"


def docker(
    *args: str, timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def env_flags(values: dict[str, str]) -> list[str]:
    """`docker run` flags setting each variable."""
    return [flag for name, value in values.items() for flag in ("-e", f"{name}={value}")]


def inspect_image(variant: str) -> dict[str, Any]:
    result = docker("image", "inspect", image_of(variant))
    if result.returncode != 0:
        pytest.fail(f"image {image_of(variant)} not found: build it with `make image`")
    data: dict[str, Any] = json.loads(result.stdout)[0]
    return data


@pytest.fixture(scope="session")
def image() -> str:
    inspect_image("all")
    return image_of("all")


@pytest.fixture(scope="session")
def arm64_image() -> str:
    """This machine builds amd64: the arm64 image carries its architecture in its tag."""
    tag = f"{image_of(ARM64_VARIANT)}-arm64"
    result = docker("image", "inspect", "--format", "{{.Architecture}}", tag)
    if result.returncode != 0:
        pytest.fail(f"{tag} not found: make image VARIANT={ARM64_VARIANT} PLATFORMS=linux/arm64")
    assert result.stdout.strip() == "arm64"
    return tag


@pytest.fixture(scope="module")
def host(image: str) -> Iterator[Any]:
    """A long-lived container of the image, as testinfra's docker backend sees it."""
    cid = docker(
        "run",
        "-d",
        "--rm",
        "--entrypoint",
        "/usr/bin/tini",
        image,
        "--",
        "sleep",
        "600",
        check=True,
    ).stdout.strip()
    try:
        yield testinfra.get_host(f"docker://{cid}")
    finally:
        docker("rm", "-f", cid)
