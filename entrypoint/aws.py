"""boto3 clients with bounded, botocore-native retries and timeouts.

Credentials come from the standard chain (ECS task role, EKS service account, env);
`AWS_ENDPOINT_URL` (and per-service `AWS_ENDPOINT_URL_<SERVICE>`) is honoured by boto3
itself, so a moto server or a VPC endpoint needs no runner setting.
"""

from __future__ import annotations

import functools
from typing import Any

# Standard retry mode: exponential backoff with jitter, retrying throttling and
# transient errors. Bounded, so a dead endpoint fails the run in seconds, not hours.
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def client(service: str) -> Any:
    """A client for `service` from the default credential chain."""
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="dbt-runner",
    )
    return _session().client(service, config=config)
