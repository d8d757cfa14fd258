"""AWS: the timeout settings and boto3 clients with botocore's own bounded retries.

Credentials come from the standard chain (ECS task role, EKS service account, env);
`AWS_ENDPOINT_URL` (and per-service `AWS_ENDPOINT_URL_<SERVICE>`) is honoured by boto3
itself, so a moto server or a VPC endpoint needs no runner setting. Retries follow
botocore's AWS_RETRY_MODE / AWS_MAX_ATTEMPTS; unset, the runner asks for standard
mode (exponential backoff with jitter) and 4 attempts, so a dead endpoint fails a run in
seconds rather than hanging it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 4


class AwsSettings(BaseModel):
    """Timeouts for AWS calls (DBT_RUNNER_AWS__*). Retries are botocore's own:
    AWS_RETRY_MODE and AWS_MAX_ATTEMPTS (default here: standard mode, 4 attempts)."""

    model_config = ConfigDict(extra="forbid")

    connect_timeout_s: float = Field(
        default=5, gt=0, le=300, description="seconds to wait for a connection to an AWS API"
    )
    read_timeout_s: float = Field(
        default=60, gt=0, le=900, description="seconds to wait for an AWS API's answer"
    )


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def client(service: str, settings: AwsSettings | None = None) -> Any:
    """A client for `service` from the default credential chain."""
    from botocore.config import Config

    options: dict[str, Any] = {"user_agent_extra": "dbt-runner"}
    if settings is not None:
        options |= {
            "connect_timeout": settings.connect_timeout_s,
            "read_timeout": settings.read_timeout_s,
        }
    if not os.environ.get("AWS_RETRY_MODE") and not os.environ.get("AWS_MAX_ATTEMPTS"):
        options["retries"] = {"mode": DEFAULT_RETRY_MODE, "max_attempts": DEFAULT_MAX_ATTEMPTS}
    return _session().client(service, config=Config(**options))


def region() -> str | None:
    """The region of the default session (AWS_REGION, AWS_DEFAULT_REGION, the config
    file), or None."""
    name = _session().region_name
    return str(name) if name else None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__
