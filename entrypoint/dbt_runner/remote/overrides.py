"""What the task receives from its caller: the job's settings (the caller's DBT_RUNNER_*
variables, less the caller's own and every secret), the run's id and project, the
workflow's context; and the `startedBy` a rerun finds its task by."""

from __future__ import annotations

import hashlib
import logging
import os
import typing
from typing import Any

from pydantic import BaseModel, SecretStr

from dbt_runner.config import Settings
from dbt_runner.config.values import ENV_PREFIX, NESTED_DELIMITER

log = logging.getLogger(__name__)

# The caller's own settings: its folders and the remote's, never the task's.
CALLERS = (
    *("PROJECT_DIR", "PROJECT_URL", "WORK_DIR", "REPORT_DIR"),
    *("PROFILES_DIR", "PREPARED_DIR", "RUN_ID", "REMOTE__"),
)
# Storage the task writes: a folder on the caller's machine means nothing to it.
STORAGE_URLS = ("DBT_RUNNER_ARTIFACTS_URL", "DBT_RUNNER_STATE_URL")
# The workflow's context the run's report and links use.
GITHUB_CONTEXT = (
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_HEAD_REF",
    "GITHUB_BASE_REF",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_SERVER_URL",
    "GITHUB_EVENT_NAME",
    "GITHUB_ACTOR",
)


def secret_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """The DBT_RUNNER_* variables whose setting is a secret (SecretStr), nested too."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name).upper()
        types = typing.get_args(field.annotation) or (field.annotation,)
        if SecretStr in types or "SecretStr" in str(field.annotation):
            found.add(key)
        for kind in types:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= secret_names(kind, key + NESTED_DELIMITER)
    return found


def forwarded(environ: dict[str, str], secrets: set[str]) -> dict[str, str]:
    """The caller's variables the task gets; a secret is named in a warning and left
    to the task definition (RunTask overrides are visible to anyone who may describe
    the task), and so is a storage URL that is a folder on the caller's machine (an
    image's own `/out`, when the caller is the image)."""
    sent: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if name in GITHUB_CONTEXT:
            sent[name] = value
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :].startswith(CALLERS):
            continue
        if name in secrets or name.startswith(tuple(s + NESTED_DELIMITER for s in secrets)):
            log.warning(
                "%s is a secret: not sent to the task (give its task definition a secret)", name
            )
            continue
        if name in STORAGE_URLS and not is_remote_url(value):
            log.info("%s=%s is on this machine: the task uses its definition's", name, value)
            continue
        sent[name] = value
    return sent


def is_remote_url(value: str | None) -> bool:
    """Storage a task elsewhere can reach (a caller's folder it cannot)."""
    return bool(value) and str(value).startswith("s3://")


def container_overrides(container: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    return {
        "name": container,
        "command": command,
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
    }


def started_by(explicit: str | None, run_id: str, scope: str) -> str:
    """ECS's `startedBy` (36 characters at most): the setting, else one a rerun of the
    same workflow attempt and job computes again (`scope`: the project and env), else
    one unique to this run."""
    if explicit:
        return explicit[:36]
    workflow = [
        os.environ.get(n, "") for n in ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB")
    ]
    seed = "|".join([scope, *workflow]) if workflow[0] else run_id
    return "dbt-runner-" + hashlib.sha256(seed.encode()).hexdigest()[:25]
