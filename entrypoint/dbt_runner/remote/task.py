"""ECS: the task definition's container, starting the task (capacity errors retried
with backoff, bounded), finding a caller's running task again, stopping it.

API errors (throttling included) are botocore's to retry (aws.py); what ECS answers in
`failures[]` is the runner's to read."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from dbt_runner.aws import error_code
from dbt_runner.config.remote import RemoteSettings
from dbt_runner.errors import ConfigError, InfraError

log = logging.getLogger(__name__)

# failures[] reasons that say "not now" rather than "never": retried with backoff.
CAPACITY = ("RESOURCE:", "Capacity is unavailable", "AGENT", "Service Unavailable")
BACKOFF_S = 2.0  # the first wait; doubled each attempt, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class Container:
    """The task definition's container that runs the job, as the caller needs it."""

    name: str
    environment: dict[str, str]
    log_group: str | None  # awslogs options: where its log stream is
    log_prefix: str | None

    def log_stream(self, task_arn: str) -> str | None:
        """awslogs' stream name: prefix/container/task id."""
        if not self.log_group or not self.log_prefix:
            return None
        return f"{self.log_prefix}/{self.name}/{task_arn.rsplit('/', 1)[-1]}"


def container_of(ecs: Any, settings: RemoteSettings) -> Container:
    """The container named DBT_RUNNER_REMOTE__CONTAINER in the task definition."""
    try:
        definition = ecs.describe_task_definition(taskDefinition=settings.task_definition)
    except Exception as exc:
        raise InfraError(
            f"task definition '{settings.task_definition}' could not be read ({error_code(exc)}): "
            "check DBT_RUNNER_REMOTE__TASK_DEFINITION and ecs:DescribeTaskDefinition"
        ) from exc
    containers = definition["taskDefinition"]["containerDefinitions"]
    found = next((c for c in containers if c["name"] == settings.container), None)
    if found is None:
        names = ", ".join(c["name"] for c in containers)
        raise ConfigError(
            f"DBT_RUNNER_REMOTE__CONTAINER='{settings.container}': task definition "
            f"'{settings.task_definition}' has no such container (it has: {names})"
        )
    options = (found.get("logConfiguration") or {}).get("options", {})
    awslogs = (found.get("logConfiguration") or {}).get("logDriver") == "awslogs"
    return Container(
        name=found["name"],
        environment={e["name"]: e["value"] for e in found.get("environment", [])},
        log_group=options.get("awslogs-group") if awslogs else None,
        log_prefix=options.get("awslogs-stream-prefix") if awslogs else None,
    )


def running_task(ecs: Any, cluster: str, started_by: str) -> dict[str, Any] | None:
    """The caller's task still running (a rerun of the same attempt re-attaches)."""
    arns = ecs.list_tasks(cluster=cluster, startedBy=started_by, desiredStatus="RUNNING")
    if not arns.get("taskArns"):
        return None
    return describe(ecs, cluster, arns["taskArns"][0])


def describe(ecs: Any, cluster: str, task_arn: str) -> dict[str, Any]:
    answer = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
    if not answer.get("tasks"):
        reasons = "; ".join(f"{f.get('reason')}" for f in answer.get("failures", []))
        raise InfraError(f"task {task_arn} is not known to ECS ({reasons or 'no answer'})")
    task: dict[str, Any] = answer["tasks"][0]
    return task


def run_request(
    settings: RemoteSettings, overrides: dict[str, Any], started_by: str, token: str
) -> dict[str, Any]:
    """RunTask's request for one task: `settings`: where it runs; `overrides`: the
    container's (command, environment); `started_by`: what a rerun finds it by;
    `token`: RunTask's client token (a retried call starts no second task)."""
    request: dict[str, Any] = {
        "cluster": settings.cluster,
        "taskDefinition": settings.task_definition,
        "count": 1,
        "launchType": settings.launch_type,
        "overrides": {"containerOverrides": [overrides]},
        "startedBy": started_by,
        "clientToken": token,
    }
    if settings.subnets:
        network: dict[str, Any] = {
            "subnets": settings.subnets,
            "securityGroups": settings.security_groups,
            "assignPublicIp": "ENABLED" if settings.assign_public_ip else "DISABLED",
        }
        request["networkConfiguration"] = {"awsvpcConfiguration": network}
    return request


def start(
    ecs: Any, request: dict[str, Any], attempts: int, stop: threading.Event
) -> dict[str, Any]:
    """Start the task (`ecs`: boto3's client; `request`: run_request's); while ECS
    answers with capacity failures, wait and try again, `attempts` times at most (the
    same client token: a retry never starts a second task); `stop`: set by a signal."""
    wait = BACKOFF_S
    for attempt in range(1, attempts + 1):
        answer = ecs.run_task(**request)
        if answer.get("tasks"):
            task: dict[str, Any] = answer["tasks"][0]
            return task
        failures = answer.get("failures") or [{"reason": "no task and no failure given"}]
        said = "; ".join(
            f"{f.get('reason')}{': ' + f['detail'] if f.get('detail') else ''}" for f in failures
        )
        if (
            not any(str(f.get("reason", "")).startswith(CAPACITY) for f in failures)
            or attempt == attempts
        ):
            raise InfraError(f"ECS did not start the task: {said}{_fix(said)}")
        log.warning(
            "ECS has no capacity yet (%s): attempt %d of %d in %.0f s",
            said,
            attempt + 1,
            attempts,
            wait,
        )
        if stop.wait(wait):
            raise InfraError("stopped while waiting for ECS capacity")
        wait = min(wait * 2, MAX_BACKOFF_S)
    raise AssertionError("unreachable")  # pragma: no cover


def _fix(said: str) -> str:
    if said.startswith(CAPACITY):
        return (
            "; the cluster has no capacity for the task: add capacity, or raise "
            "DBT_RUNNER_REMOTE__START_ATTEMPTS"
        )
    return "; check DBT_RUNNER_REMOTE__CLUSTER, __TASK_DEFINITION, __SUBNETS, __SECURITY_GROUPS"


def stop_task(ecs: Any, cluster: str, task_arn: str, reason: str) -> None:
    """StopTask (`ecs`: boto3's client) for `task_arn` in `cluster`, with the `reason`
    ECS shows; a failure is a warning (ECS's own deadline stops it otherwise)."""
    try:
        ecs.stop_task(cluster=cluster, task=task_arn, reason=reason[:255])
    except Exception as exc:
        log.warning("StopTask for %s failed (%s): stop it by hand", task_arn, error_code(exc))
