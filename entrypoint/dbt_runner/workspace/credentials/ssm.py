"""SSM Parameter Store: every parameter under a path (named for the field it holds,
e.g. /dbt/prod/password), or parameters by name, decrypted."""

from __future__ import annotations

from typing import Any

from dbt_runner.aws import error_code
from dbt_runner.errors import InfraError


def parameter_fields(path: str | None, names: dict[str, str], client: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if path:
        try:
            paginator = client.get_paginator("get_parameters_by_path")
            for page in paginator.paginate(Path=path, WithDecryption=True, Recursive=False):
                for parameter in page["Parameters"]:
                    fields[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
        except Exception as exc:
            raise InfraError(
                f"SSM parameters under '{path}' could not be read ({error_code(exc)}): check "
                "DBT_RUNNER_CREDENTIALS__SSM_PATH and ssm:GetParametersByPath (and kms:Decrypt)"
            ) from exc
        if not fields:
            raise InfraError(
                f"SSM path '{path}' holds no parameters: check DBT_RUNNER_CREDENTIALS__SSM_PATH"
            )
    if names:
        try:
            response = client.get_parameters(Names=sorted(set(names.values())), WithDecryption=True)
        except Exception as exc:
            raise InfraError(
                f"SSM parameters could not be read ({error_code(exc)}): check "
                "DBT_RUNNER_CREDENTIALS__SSM_PARAMETERS and ssm:GetParameters (and kms:Decrypt)"
            ) from exc
        if response.get("InvalidParameters"):
            missing = ", ".join(response["InvalidParameters"])
            raise InfraError(
                f"SSM parameter(s) not found: {missing}; "
                "check DBT_RUNNER_CREDENTIALS__SSM_PARAMETERS"
            )
        values = {parameter["Name"]: parameter["Value"] for parameter in response["Parameters"]}
        for field_name, name in names.items():
            fields[field_name] = values[name]
    return fields
