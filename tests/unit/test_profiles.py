"""Rendered profiles: required fields per adapter, and no secret in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_runner import aws
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


def iam_settings(**credentials: object) -> Settings:
    return Settings.model_validate(
        {
            "project_dir": DEMO,
            "work_dir": Path("/w"),
            "env": "prod",
            "warehouse": {"type": "redshift", "host": "h", "database": "dev"},
            "credentials": credentials,
        }
    )


def test_redshift_iam_renders_dbt_redshifts_own_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password in the profile or its environment: the driver fetches credentials for
    each connection opened after the last ones expired."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws._session.cache_clear()
    cluster = iam_settings(
        redshift_cluster_id="c1", redshift_db_user="dbt", redshift_auto_create=True
    )
    output, env = render_output(cluster, PROJECT, {"host": "fetched", "port": 5439})
    assert {k: output[k] for k in ("method", "cluster_id", "user", "autocreate", "region")} == {
        "method": "iam",
        "cluster_id": "c1",
        "user": "dbt",
        "autocreate": True,
        "region": "eu-west-1",
    }
    assert "password" not in output and PASSWORD_ENV not in env
    serverless, _ = render_output(iam_settings(redshift_workgroup="etl"), PROJECT)
    assert {k: serverless.get(k) for k in ("method", "is_serverless", "serverless_work_group")} == {
        "method": "iam_role",
        "is_serverless": True,
        "serverless_work_group": "etl",
    }
    assert "user" not in serverless and "password" not in serverless
    aws._session.cache_clear()


def test_postgres_with_redshift_credentials_keeps_the_password() -> None:
    """Only a rendered redshift profile logs in natively."""
    settings = Settings.model_validate(
        {
            "project_dir": DEMO,
            "work_dir": Path("/w"),
            "warehouse": {"type": "postgres", "host": "h", "database": "d"},
            "credentials": {"redshift_cluster_id": "c1", "redshift_db_user": "u"},
        }
    )
    output, env = render_output(settings, PROJECT, {"user": "IAM:u", "password": "tmp"})
    assert "method" not in output and env[PASSWORD_ENV] == "tmp"
