"""Secrets Manager: a JSON secret of connection fields, or a BigQuery service-account key."""

from __future__ import annotations

import json
from typing import Any

from dbt_runner.aws import error_code
from dbt_runner.errors import InfraError


def secret_text(secret_id: str, client: Any) -> str:
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise InfraError(
            f"Secrets Manager secret '{secret_id}' could not be read ({error_code(exc)}): "
            "check the secret id and that the task's role may call "
            "secretsmanager:GetSecretValue"
        ) from exc
    if "SecretString" in response:
        return str(response["SecretString"])
    return bytes(response["SecretBinary"]).decode("utf-8")


def secret_json(secret_id: str, client: Any) -> dict[str, Any]:
    text = secret_text(secret_id, client)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise InfraError(
            f"Secrets Manager secret '{secret_id}' is not a JSON object; store connection "
            'fields as {"host": ..., "username": ..., "password": ...} or a service-account key'
        )
    return data


def secret_value(reference: str, client: Any) -> str:
    """`SECRET_ID` (the whole string) or `SECRET_ID#key` (one key of a JSON secret)."""
    secret_id, _, key = reference.partition("#")
    if not key:
        return secret_text(secret_id, client)
    data = secret_json(secret_id, client)
    if key not in data:
        raise InfraError(f"Secrets Manager secret '{secret_id}' has no key '{key}'")
    return str(data[key])


def is_service_account_key(data: dict[str, Any]) -> bool:
    return data.get("type") == "service_account" and "private_key" in data
