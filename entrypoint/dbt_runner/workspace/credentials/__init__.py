"""Credentials: connection fields fetched at run time from AWS, never written in clear.

Sources, each used when its setting is set, in this order (a later one overrides an
earlier one): a Glue connection, a Secrets Manager secret, SSM parameters, Redshift
IAM (the endpoint; a temporary password only for a project's own profiles.yml, since a
rendered profile logs in with dbt-redshift's own IAM method). The fields reach dbt
through the rendered profile (secrets as `DBT_ENV_SECRET_*` variables) or, for a
project's own profiles.yml, through the documented `DBT_WAREHOUSE_*` variables. A
BigQuery service-account key becomes a 0600 file in the run's scratch folder, removed
when the run ends.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_runner import aws
from dbt_runner.config import Settings
from dbt_runner.workspace.credentials import glue, redshift_iam, secrets_manager, ssm

log = logging.getLogger(__name__)

# The connection fields the runner knows, and the names sources use for them.
FIELDS = ("host", "port", "user", "password", "database", "schema", "project")
ALIASES = {
    "username": "user",
    "dbuser": "user",
    "dbname": "database",
    "db": "database",
    "dataset": "schema",
    "hostname": "host",
    "endpoint": "host",
    "project_id": "project",
}


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Known connection fields from a source's mapping, under the runner's names."""
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key).lower(), str(key).lower())
        if name in FIELDS and value not in (None, ""):
            fields[name] = value
    if "port" in fields:
        fields["port"] = int(fields["port"])
    return fields


@dataclass
class Credentials:
    fields: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # what came from where; no values
    secrets_dir: Path | None = None
    # Fetches the temporary Redshift user and password again (a project's own profile).
    refresh: Callable[[], dict[str, Any]] | None = None

    def merge(self, fields: dict[str, Any], source: str) -> None:
        if fields:
            self.fields.update(fields)
            self.sources.append(f"{', '.join(sorted(fields))} from {source}")

    def remove_files(self) -> None:
        """Delete the key file(s) written for this run."""
        if self.secrets_dir is not None:
            shutil.rmtree(self.secrets_dir, ignore_errors=True)


def _write_keyfile(key: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "bigquery-keyfile.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(key, handle)
    return path


def fetch(settings: Settings, secrets_dir: Path, native_redshift: bool = False) -> Credentials:
    """Fetch every configured source, in order, a later one overriding an earlier; raise
    InfraError naming what failed. `secrets_dir`: where a key file goes;
    `native_redshift`: the profile logs in with dbt-redshift's own IAM method (no
    password to fetch)."""
    result = Credentials(secrets_dir=secrets_dir)
    if not settings.credentials.configured:
        return result
    _from_glue(settings, result)
    _from_secrets_manager(settings, result, secrets_dir)
    _from_ssm(settings, result)
    _from_redshift_iam(settings, result, native_redshift)
    return result


def _from_glue(settings: Settings, result: Credentials) -> None:
    name, aws_settings = settings.credentials.glue_connection, settings.aws
    if name:
        fields = glue.connection_fields(
            name,
            aws.client("glue", aws_settings),
            lambda: aws.client("secretsmanager", aws_settings),
        )
        result.merge(normalise(fields), f"Glue connection '{name}'")


def _from_secrets_manager(settings: Settings, result: Credentials, secrets_dir: Path) -> None:
    secret_id = settings.credentials.secret_id
    if not secret_id:
        return
    raw = secrets_manager.secret_json(secret_id, aws.client("secretsmanager", settings.aws))
    if not secrets_manager.is_service_account_key(raw):
        result.merge(normalise(raw), f"Secrets Manager secret '{secret_id}'")
        return
    path = _write_keyfile(raw, secrets_dir)
    result.merge({"keyfile": str(path)}, f"Secrets Manager secret '{secret_id}'")
    if raw.get("project_id"):
        result.fields.setdefault("project", raw["project_id"])


def _from_ssm(settings: Settings, result: Credentials) -> None:
    config = settings.credentials
    if config.ssm_path or config.ssm_parameters:
        client = aws.client("ssm", settings.aws)
        raw = ssm.parameter_fields(config.ssm_path, config.ssm_parameters, client)
        where = f"SSM path '{config.ssm_path}'" if config.ssm_path else "SSM parameters"
        result.merge(normalise(raw), where)


def _from_redshift_iam(settings: Settings, result: Credentials, native: bool) -> None:
    """The endpoint of the cluster or workgroup when no other source gave a host and,
    unless dbt-redshift's own IAM method logs in (`native`, a rendered profile), a
    temporary user and password."""
    config = settings.credentials
    cluster, workgroup = config.redshift_cluster_id, config.redshift_workgroup
    if not (cluster or workgroup):
        return
    where = (
        f"Redshift IAM (cluster '{cluster}')"
        if cluster
        else f"Redshift Serverless IAM (workgroup '{workgroup}')"
    )
    client = aws.client("redshift" if cluster else "redshift-serverless", settings.aws)
    if not native:
        result.merge(_redshift_password(settings, result, client), where)
        fields = dict(result.fields)
        result.refresh = lambda: _redshift_password(settings, Credentials(fields), client, False)
    if (settings.warehouse.host or result.fields.get("host")) is None:
        endpoint = (
            redshift_iam.cluster_endpoint(client, cluster)
            if cluster
            else redshift_iam.workgroup_endpoint(client, str(workgroup))
        )
        result.merge(endpoint, where)


def _redshift_password(
    settings: Settings, result: Credentials, client: Any, first: bool = True
) -> dict[str, Any]:
    """A temporary password for a project's own profiles.yml: fetched again before each
    dbt command, but a command longer than DBT_RUNNER_CREDENTIALS__REDSHIFT_DURATION_S
    (dbt reads the profile once per command) fails to log in after it, and the first
    fetch says so. `result`: the fields fetched so far; `client`: boto3's."""
    config = settings.credentials
    database = settings.warehouse.database or result.fields.get("database")
    if first:
        log.warning(
            "the project's own profiles.yml gets a Redshift password that lasts %d s, fetched "
            "again before each dbt command: a connection a command opens after that fails to "
            "log in; use dbt-redshift's `method: iam` in it, or let the runner render the "
            "profile (it uses that method)",
            config.redshift_duration_s,
        )
    if config.redshift_cluster_id:
        return redshift_iam.cluster_password(
            client,
            cluster_id=config.redshift_cluster_id,
            db_user=str(config.redshift_db_user),  # required with a cluster id (settings)
            database=database,
            duration_s=config.redshift_duration_s,
            auto_create=config.redshift_auto_create,
        )
    return redshift_iam.workgroup_password(
        client,
        workgroup=str(config.redshift_workgroup),
        database=database,
        duration_s=config.redshift_duration_s,
    )
