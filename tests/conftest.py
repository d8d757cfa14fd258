from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    DEMO,
    Moto,
    Postgres,
    clean_env,
    copy_project,
    moto_server,
    postgres_server,
)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    with moto_server() as server:
        yield server


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    """A private copy of the demo project."""
    return copy_project(DEMO, tmp_path / "demo")


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def env(tmp_path: Path, demo_project: Path, out_dir: Path) -> dict[str, str]:
    """A clean environment running the demo project on DuckDB into tmp folders."""
    return clean_env(
        DBT_RUNNER_PROJECT_DIR=str(demo_project),
        DBT_RUNNER_WORK_DIR=str(tmp_path / "work"),
        DBT_RUNNER_ARTIFACTS_URL=str(out_dir),
        DBT_RUNNER_WAREHOUSE__PATH=str(tmp_path / "warehouse.duckdb"),
    )
