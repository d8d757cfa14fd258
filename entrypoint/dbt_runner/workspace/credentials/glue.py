"""An AWS Glue connection: host, port and database from its JDBC URL; user and
password from its properties, or from the Secrets Manager secret it references."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from dbt_runner.aws import error_code
from dbt_runner.errors import InfraError
from dbt_runner.workspace.credentials import secrets_manager

SETTING = "DBT_RUNNER_CREDENTIALS__GLUE_CONNECTION"


def parse_jdbc_url(url: str) -> dict[str, Any]:
    """`jdbc:redshift://host:5439/dev?ssl=true` -> host, port, database."""
    if not url.startswith("jdbc:"):
        raise ValueError("not a JDBC URL")
    parts = urlsplit(url[len("jdbc:") :].split(";", 1)[0])
    if not parts.hostname:
        raise ValueError("no host in the JDBC URL")
    fields: dict[str, Any] = {"host": parts.hostname}
    if parts.port:
        fields["port"] = parts.port
    database = parts.path.strip("/")
    if database:
        fields["database"] = database
    return fields


def connection_fields(name: str, glue: Any, secretsmanager: Callable[[], Any]) -> dict[str, Any]:
    try:
        connection = glue.get_connection(Name=name, HidePassword=False)["Connection"]
    except Exception as exc:
        raise InfraError(
            f"Glue connection '{name}' could not be read ({error_code(exc)}): check {SETTING} "
            "and that the task's role may call glue:GetConnection"
        ) from exc
    properties = connection.get("ConnectionProperties", {})
    url = properties.get("JDBC_CONNECTION_URL", "")
    try:
        fields = parse_jdbc_url(url)
    except ValueError as exc:
        raise InfraError(
            f"Glue connection '{name}': JDBC_CONNECTION_URL '{url}' is unusable ({exc}); "
            "expected jdbc:redshift://host:port/database or jdbc:postgresql://..."
        ) from None
    if properties.get("USERNAME"):
        fields["user"] = properties["USERNAME"]
    if properties.get("PASSWORD"):
        fields["password"] = properties["PASSWORD"]
    secret_id = properties.get("SECRET_ID") or connection.get(
        "AuthenticationConfiguration", {}
    ).get("SecretArn")
    if secret_id:
        secret = secrets_manager.secret_json(secret_id, secretsmanager())
        for key in ("username", "user", "password"):
            if secret.get(key):
                fields["user" if key == "username" else key] = secret[key]
    return fields
