"""Rendered profiles: required fields per adapter, and no secret in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_runner.config import Settings
from dbt_runner.errors import ConfigError
from dbt_runner.workspace.profiles import PASSWORD_ENV, render_output
from dbt_runner.workspace.project import Project
from tests.support import DEMO

PROJECT = Project(DEMO, DEMO, "demo", "demo")


def make_settings(**warehouse: object) -> Settings:
    return Settings.model_validate(
        {"project_dir": DEMO, "work_dir": Path("/w"), "env": "prod", "warehouse": warehouse}
    )


def render(**warehouse: object) -> tuple[dict[str, object], dict[str, str]]:
    return render_output(make_settings(**warehouse), PROJECT)


def test_duckdb_defaults_to_a_file_in_the_work_dir() -> None:
    output, env = render()
    assert output == {"type": "duckdb", "threads": 4, "path": "/w/demo-prod.duckdb"}
    assert env == {}


def test_postgres_password_is_an_env_reference() -> None:
    output, env = render(type="postgres", host="db", user="u", database="d", password="pw-123")
    assert output["password"] == "{{ env_var('" + PASSWORD_ENV + "', '') }}"
    assert "pw-123" not in str(output)
    assert env == {PASSWORD_ENV: "pw-123"}
    assert (output["port"], output["schema"], output["dbname"]) == (5432, "public", "d")


def test_fetched_fields_fill_in_and_settings_win() -> None:
    settings = make_settings(type="redshift", schema="mart")
    fetched = {
        "host": "cluster.x",
        "port": 5440,
        "user": "iam:u",
        "password": "tmp",
        "database": "dev",
        "schema": "ignored",
    }
    output, env = render_output(settings, PROJECT, fetched)
    assert (output["host"], output["port"], output["user"], output["schema"]) == (
        "cluster.x",
        5440,
        "iam:u",
        "mart",
    )
    assert env[PASSWORD_ENV] == "tmp"


@pytest.mark.parametrize(
    ("warehouse", "missing"),
    [
        (
            {"type": "postgres", "user": "u", "database": "d"},
            "DBT_RUNNER_WAREHOUSE__HOST is required for postgres",
        ),
        (
            {"type": "redshift", "host": "h", "database": "d"},
            "DBT_RUNNER_WAREHOUSE__USER is required for redshift",
        ),
        (
            {"type": "bigquery", "schema": "ds"},
            "DBT_RUNNER_WAREHOUSE__PROJECT is required for bigquery",
        ),
        (
            {"type": "bigquery", "project": "p"},
            "DBT_RUNNER_WAREHOUSE__SCHEMA is required for bigquery",
        ),
    ],
)
def test_missing_fields(warehouse: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        render(**warehouse)


def test_bigquery_keyfile_or_application_default() -> None:
    output, _ = render(type="bigquery", project="p", schema="ds", keyfile="/k.json", location="EU")
    assert (output["method"], output["keyfile"], output["dataset"], output["location"]) == (
        "service-account",
        "/k.json",
        "ds",
        "EU",
    )
    output, _ = render(type="bigquery", project="p", schema="ds")
    assert output["method"] == "oauth"


def test_extra_fields_are_merged() -> None:
    output, _ = render(
        type="postgres",
        host="h",
        user="u",
        database="d",
        extra={"keepalives_idle": 30, "sslmode": "require"},
    )
    assert (output["keepalives_idle"], output["sslmode"]) == (30, "require")
