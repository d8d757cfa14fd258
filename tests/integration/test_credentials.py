"""Credentials fetched at run time from a real moto server, used against a real
PostgreSQL, and found nowhere in logs, reports or artifacts afterwards."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber

from dbt_runner.config import Settings
from dbt_runner.errors import InfraError
from dbt_runner.workspace import credentials
from dbt_runner.workspace.credentials import redshift_iam
from dbt_runner.workspace.profiles import PASSWORD_ENV, exported_env, prepare_profile
from dbt_runner.workspace.project import Project
from tests.support import DEMO, Moto, Postgres, find_secret, read_json, run_cli

QUICK = {"DBT_RUNNER_JOB": "custom", "DBT_RUNNER_PHASES": "deps,debug,seed"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pg_env(env: dict[str, str], moto: Moto, schema: str) -> dict[str, str]:
    """Postgres chosen, no connection field set: the credentials source supplies them."""
    return (
        env
        | moto.env
        | QUICK
        | {
            "DBT_RUNNER_WAREHOUSE__TYPE": "postgres",
            "DBT_RUNNER_WAREHOUSE__SCHEMA": schema,
        }
    )


def jdbc(postgres: Postgres) -> str:
    return f"jdbc:postgresql://{postgres.host}:{postgres.port}/{postgres.database}"


def setup_glue(moto: Moto, postgres: Postgres) -> dict[str, str]:
    name = unique("glue")
    moto.client("glue").create_connection(
        ConnectionInput={
            "Name": name,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {
                "JDBC_CONNECTION_URL": jdbc(postgres),
                "USERNAME": postgres.user,
                "PASSWORD": postgres.password,
            },
        }
    )
    return {"DBT_RUNNER_CREDENTIALS__GLUE_CONNECTION": name}


def setup_glue_with_secret(moto: Moto, postgres: Postgres) -> dict[str, str]:
    secret = unique("glue-secret")
    moto.client("secretsmanager").create_secret(
        Name=secret,
        SecretString=json.dumps({"username": postgres.user, "password": postgres.password}),
    )
    name = unique("glue")
    moto.client("glue").create_connection(
        ConnectionInput={
            "Name": name,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {"JDBC_CONNECTION_URL": jdbc(postgres), "SECRET_ID": secret},
        }
    )
    return {"DBT_RUNNER_CREDENTIALS__GLUE_CONNECTION": name}


def setup_secret(moto: Moto, postgres: Postgres) -> dict[str, str]:
    name = unique("dbt/prod/warehouse")
    # The shape RDS and Redshift rotation use.
    value = {
        "engine": "postgres",
        "host": postgres.host,
        "port": postgres.port,
        "username": postgres.user,
        "password": postgres.password,
        "dbname": postgres.database,
    }
    moto.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))
    return {"DBT_RUNNER_CREDENTIALS__SECRET_ID": name}


def setup_ssm_path(moto: Moto, postgres: Postgres) -> dict[str, str]:
    path = "/" + unique("dbt") + "/prod"
    ssm = moto.client("ssm")
    for name, value, kind in (
        ("host", postgres.host, "String"),
        ("port", str(postgres.port), "String"),
        ("user", postgres.user, "String"),
        ("database", postgres.database, "String"),
        ("password", postgres.password, "SecureString"),
    ):
        ssm.put_parameter(Name=f"{path}/{name}", Value=value, Type=kind)
    return {"DBT_RUNNER_CREDENTIALS__SSM_PATH": path}


def setup_ssm_names(moto: Moto, postgres: Postgres) -> dict[str, str]:
    """Connection fields from settings, the password alone from a named parameter."""
    name = "/" + unique("dbt") + "/password"
    moto.client("ssm").put_parameter(Name=name, Value=postgres.password, Type="SecureString")
    return {
        "DBT_RUNNER_CREDENTIALS__SSM_PARAMETERS": json.dumps({"password": name}),
        "DBT_RUNNER_WAREHOUSE__HOST": postgres.host,
        "DBT_RUNNER_WAREHOUSE__PORT": str(postgres.port),
        "DBT_RUNNER_WAREHOUSE__USER": postgres.user,
        "DBT_RUNNER_WAREHOUSE__DATABASE": postgres.database,
    }


SOURCES = {
    "glue": (setup_glue, "Glue connection"),
    "glue-secret": (setup_glue_with_secret, "Glue connection"),
    "secretsmanager": (setup_secret, "Secrets Manager secret"),
    "ssm-path": (setup_ssm_path, "SSM path"),
    "ssm-names": (setup_ssm_names, "SSM parameters"),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_demo_runs_on_postgres_with_fetched_credentials(
    source: str, env: dict[str, str], moto: Moto, postgres: Postgres, out_dir: Path, tmp_path: Path
) -> None:
    setup, described = SOURCES[source]
    schema = "creds_" + source.replace("-", "_")
    env = pg_env(env, moto, schema) | setup(moto, postgres)
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    assert report["status"] == "success"
    assert any(described in line and "password" in line for line in report["credentials"])
    assert postgres.query(f"select count(*) from {schema}.raw_orders") == [(30,)]
    # The password was used, and is nowhere: logs, reports, artifacts, scratch.
    output = result.stdout + result.stderr
    assert find_secret(postgres.password, output, out_dir, tmp_path / "work") == []
    assert not list((tmp_path / "work" / "runs").iterdir())  # scratch removed


def test_project_profile_reads_exported_credentials(
    env: dict[str, str], moto: Moto, postgres: Postgres, demo_project: Path, out_dir: Path
) -> None:
    """A project with its own profiles.yml reads fetched fields as DBT_WAREHOUSE_*."""
    profile = {
        "demo": {
            "target": "prod",
            "outputs": {
                "prod": {
                    "type": "postgres",
                    "host": "{{ env_var('DBT_WAREHOUSE_HOST') }}",
                    "port": "{{ env_var('DBT_WAREHOUSE_PORT') | int }}",
                    "user": "{{ env_var('DBT_WAREHOUSE_USER') }}",
                    "password": "{{ env_var('DBT_ENV_SECRET_WAREHOUSE_PASSWORD') }}",
                    "dbname": "{{ env_var('DBT_WAREHOUSE_DATABASE') }}",
                    "schema": "creds_project_profile",
                    "threads": 2,
                }
            },
        }
    }
    (demo_project / "profiles.yml").write_text(yaml.safe_dump(profile))
    del env["DBT_RUNNER_WAREHOUSE__PATH"]  # the project's profile is the one used
    env = env | moto.env | QUICK | setup_secret(moto, postgres)
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert postgres.query("select count(*) from creds_project_profile.raw_customers") == [(12,)]


def test_missing_glue_connection_exits_4_before_dbt(
    env: dict[str, str], moto: Moto, out_dir: Path
) -> None:
    env = env | moto.env | {"DBT_RUNNER_WAREHOUSE__TYPE": "postgres"}
    env["DBT_RUNNER_CREDENTIALS__GLUE_CONNECTION"] = "no-such-connection"
    result = run_cli("run", env=env)
    assert result.returncode == 4
    [line] = result.stderr.strip().splitlines()
    assert (
        "Glue connection 'no-such-connection' could not be read (EntityNotFoundException)" in line
    )
    assert "DBT_RUNNER_CREDENTIALS__GLUE_CONNECTION" in line
    assert "Running with dbt" not in result.stdout
    report = read_json(out_dir / "report.json")
    assert (report["status"], report["phases"]) == ("infra_error", [])
    assert report["errors"][0]["stage"] == "credentials"


def test_missing_secret_and_parameters_exit_4(env: dict[str, str], moto: Moto) -> None:
    env = env | moto.env | {"DBT_RUNNER_WAREHOUSE__TYPE": "postgres"}
    missing_secret = run_cli("run", env=env | {"DBT_RUNNER_CREDENTIALS__SECRET_ID": "nope/nothing"})
    assert missing_secret.returncode == 4
    assert (
        "Secrets Manager secret 'nope/nothing' could not be read (ResourceNotFoundException)"
        in missing_secret.stderr
    )
    names = json.dumps({"password": "/no/such/parameter"})
    missing_param = run_cli("run", env=env | {"DBT_RUNNER_CREDENTIALS__SSM_PARAMETERS": names})
    assert missing_param.returncode == 4
    assert "SSM parameter(s) not found: /no/such/parameter" in missing_param.stderr


def settings_for(env: dict[str, str], **values: Any) -> Settings:
    return Settings.model_validate(
        {"project_dir": DEMO, "work_dir": env["DBT_RUNNER_WORK_DIR"], **values}
    )


def test_redshift_iam_renders_a_working_profile(
    env: dict[str, str], moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = unique("analytics")
    moto.redshift_cluster(cluster)
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    settings = settings_for(
        env,
        warehouse={"type": "redshift", "database": "dev", "schema": "analytics"},
        credentials={"redshift_cluster_id": cluster, "redshift_db_user": "dbt_prod"},
    )
    # A rendered profile: the endpoint only; the driver logs in with dbt-redshift's IAM.
    fetched = credentials.fetch(settings, tmp_path / "secrets", native_redshift=True)
    assert set(fetched.fields) == {"host", "port"}
    assert fetched.fields["host"].startswith(f"{cluster}.") and fetched.fields["port"] == 5439
    project = Project(DEMO, DEMO, "demo", "demo")
    profile = prepare_profile(settings, project, tmp_path, fetched.fields)
    output = yaml.safe_load((profile.dir / "profiles.yml").read_text())["demo"]["outputs"]["dev"]
    assert (output["type"], output["method"], output["cluster_id"]) == ("redshift", "iam", cluster)
    assert (output["user"], output["dbname"]) == ("dbt_prod", "dev")
    assert "password" not in output and PASSWORD_ENV not in profile.env
    # A project's own profiles.yml: a temporary password, exported, never in a file.
    own = credentials.fetch(settings, tmp_path / "secrets")
    assert own.fields["user"] == "IAM:dbt_prod" and len(own.fields["password"]) >= 16
    assert exported_env(own.fields)[PASSWORD_ENV] == own.fields["password"]

    # dbt accepts the profile: deps and parse through the CLI, with the same settings.
    env = (
        env
        | moto.env
        | {
            "DBT_RUNNER_WAREHOUSE__TYPE": "redshift",
            "DBT_RUNNER_WAREHOUSE__DATABASE": "dev",
            "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID": cluster,
            "DBT_RUNNER_CREDENTIALS__REDSHIFT_DB_USER": "dbt_prod",
        }
    )
    for command in (["deps"], ["parse"]):
        result = run_cli("dbt", "--", *command, env=env)
        assert result.returncode == 0, result.stdout[-3000:]
    assert "Registered adapter: redshift=" in result.stdout


def test_redshift_serverless_credentials() -> None:
    """moto has no GetCredentials (HTTP 500): botocore's Stubber stands in for AWS."""
    import boto3

    client = boto3.client(
        "redshift-serverless",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stub:
        stub.add_response(
            "get_credentials",
            {"dbUser": "IAMR:dbt", "dbPassword": "temporary-pw"},
            {"workgroupName": "etl", "dbName": "dev", "durationSeconds": 900},
        )
        stub.add_response(
            "get_workgroup",
            {
                "workgroup": {
                    "workgroupName": "etl",
                    "endpoint": {
                        "address": "etl.123.us-east-1.redshift-serverless.amazonaws.com",
                        "port": 5439,
                    },
                }
            },
            {"workgroupName": "etl"},
        )
        fields = redshift_iam.workgroup_password(
            client, workgroup="etl", database="dev", duration_s=900
        ) | redshift_iam.workgroup_endpoint(client, "etl")
    assert fields == {
        "user": "IAMR:dbt",
        "password": "temporary-pw",
        "host": "etl.123.us-east-1.redshift-serverless.amazonaws.com",
        "port": 5439,
    }
    with Stubber(client) as stub:
        stub.add_client_error("get_credentials", "AccessDeniedException")
        with pytest.raises(InfraError, match=r"workgroup 'etl'.*AccessDeniedException"):
            redshift_iam.workgroup_password(client, workgroup="etl", database=None, duration_s=900)
        stub.add_client_error("get_workgroup", "ResourceNotFoundException")
        with pytest.raises(InfraError, match=r"workgroup 'etl'.*ResourceNotFoundException"):
            redshift_iam.workgroup_endpoint(client, "etl")


FAKE_KEY = {
    "type": "service_account",
    "project_id": "analytics-prod",
    "private_key_id": "0123456789abcdef",
    "private_key": (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANfakefakefake\n-----END PRIVATE KEY-----\n"
    ),
    "client_email": "dbt@analytics-prod.iam.gserviceaccount.com",
}


def test_bigquery_key_becomes_a_0600_file_removed_after(
    env: dict[str, str], moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = unique("bq-key")
    moto.client("secretsmanager").create_secret(Name=secret, SecretString=json.dumps(FAKE_KEY))
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    settings = settings_for(
        env, warehouse={"type": "bigquery", "schema": "marts"}, credentials={"secret_id": secret}
    )
    fetched = credentials.fetch(settings, tmp_path / "secrets")
    keyfile = Path(fetched.fields["keyfile"])
    assert json.loads(keyfile.read_text()) == FAKE_KEY
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
    assert fetched.fields["project"] == "analytics-prod"
    profile = prepare_profile(
        settings, Project(DEMO, DEMO, "demo", "demo"), tmp_path, fetched.fields
    )
    output = yaml.safe_load((profile.dir / "profiles.yml").read_text())["demo"]["outputs"]["dev"]
    assert (output["method"], output["keyfile"], output["project"]) == (
        "service-account",
        str(keyfile),
        "analytics-prod",
    )
    fetched.remove_files()
    assert not keyfile.exists()

    # Through the CLI: parse with the key, and no key file or key left behind.
    env = (
        env
        | moto.env
        | {
            "DBT_RUNNER_WAREHOUSE__TYPE": "bigquery",
            "DBT_RUNNER_WAREHOUSE__SCHEMA": "marts",
            "DBT_RUNNER_CREDENTIALS__SECRET_ID": secret,
        }
    )
    for command in (["deps"], ["parse"]):
        result = run_cli("dbt", "--", *command, env=env)
        assert result.returncode == 0, result.stdout[-3000:]
    work = Path(env["DBT_RUNNER_WORK_DIR"])
    assert find_secret("MIIEvQIBADANfakefakefake", result.stdout + result.stderr, work) == []
