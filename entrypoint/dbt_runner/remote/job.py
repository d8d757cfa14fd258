"""`dbt-runner remote`, start to end: the project packed and uploaded, the task started
(or found again), followed until it stops, its reports brought back, and the caller's
exit code the task's."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_runner import aws
from dbt_runner.config.remote import RemoteCaller
from dbt_runner.errors import RunnerError
from dbt_runner.remote import overrides
from dbt_runner.remote.follow import Followed, follow, interrupts
from dbt_runner.remote.results import fetch_reports, publish_on_caller
from dbt_runner.remote.tail import LogTail
from dbt_runner.remote.task import Container, container_of, run_request, running_task, start
from dbt_runner.remote.verdict import Verdict, verdict
from dbt_runner.storage import normalise_url, open_storage
from dbt_runner.storage.archive import archive_name, pack_project
from dbt_runner.workspace.project import read_project

log = logging.getLogger(__name__)

TIMED_OUT_EXIT = 124


@dataclass
class Job:
    """What the caller knows of the job: the task's settings where the caller sets none
    (its flags, then its variables, then the task definition's, then the default)."""

    project: str
    env: str
    artifacts_url: str
    run_id: str

    def where(self) -> tuple[str, str, str]:
        return self.project, self.env, self.run_id


def _effective(flag: Any, name: str, container: Container, default: str) -> str:
    variable = f"DBT_RUNNER_{name}"
    given = flag or os.environ.get(variable)
    if variable in overrides.STORAGE_URLS and not overrides.is_remote_url(given):
        given = None  # not sent to the task (overrides.forwarded)
    return str(given or container.environment.get(variable) or default)


def upload_project(caller: RemoteCaller) -> str:
    """Pack the project to DBT_RUNNER_REMOTE__PROJECT_URL (once per content); its URL."""
    prefix = normalise_url(str(caller.remote.project_url))
    data = pack_project(caller.project_dir)
    name = archive_name(data)
    storage = open_storage(prefix, caller.aws)
    if storage.get_bytes(name) is None:
        storage.put_bytes(name, data)
    log.info("project packed: %s (%d bytes)", storage.url_for(name), len(data))
    return storage.url_for(name)


def remote(caller: RemoteCaller, args: list[str], flags: argparse.Namespace) -> int:
    """Run the job as an ECS task and follow it; the caller's exit code."""
    ecs, logs = aws.client("ecs", caller.aws), aws.client("logs", caller.aws)
    container = container_of(ecs, caller.remote)
    project, _ = read_project(caller.project_dir)
    job = Job(
        project=project,
        env=_effective(flags.env, "ENV", container, "dev"),
        artifacts_url=_effective(flags.artifacts_url, "ARTIFACTS_URL", container, "out"),
        run_id=caller.run_id,
    )
    started_by = overrides.started_by(caller.remote.started_by, job.run_id, f"{project}/{job.env}")
    with interrupts() as interrupt:
        task = running_task(ecs, str(caller.remote.cluster), started_by)
        if task is not None:
            job.run_id = _run_id_of(task, container.name) or job.run_id
            log.info("re-attached to task %s (run %s)", task["taskArn"], job.run_id)
        else:
            request = run_request(
                caller.remote, _overrides(caller, args, job, container), started_by, job.run_id
            )
            task = start(ecs, request, caller.remote.start_attempts, interrupt.event)
            log.info("task %s started (run %s)", task["taskArn"], job.run_id)
        stream = container.log_stream(task["taskArn"])
        tail = LogTail(logs, str(container.log_group), stream) if stream else None
        if tail is None:
            log.warning(
                "container '%s' has no awslogs log configuration: no log to follow", container.name
            )
        followed = follow(ecs, task["taskArn"], tail, caller.remote, interrupt)
    return _finish(caller, job, container, followed)


def _overrides(
    caller: RemoteCaller, args: list[str], job: Job, container: Container
) -> dict[str, Any]:
    env = overrides.forwarded(dict(os.environ), overrides.secret_names())
    env["DBT_RUNNER_RUN_ID"] = job.run_id
    if caller.remote.project_url:
        env["DBT_RUNNER_PROJECT_URL"] = upload_project(caller)
    return overrides.container_overrides(container.name, ["run", *args], env)


def _run_id_of(task: dict[str, Any], container: str) -> str | None:
    for entry in task.get("overrides", {}).get("containerOverrides", []):
        if entry.get("name") == container:
            for variable in entry.get("environment", []):
                if variable["name"] == "DBT_RUNNER_RUN_ID":
                    return str(variable["value"])
    return None


def _finish(caller: RemoteCaller, job: Job, container: Container, followed: Followed) -> int:
    """The reports brought back, and the exit code: a signal's, the deadline's, else the
    task's (exit 4 with the cause when it never ran)."""
    judged = verdict(followed.task, container.name)
    folder = caller.report_dir or Path("out").resolve()  # a local run's default
    try:
        report = fetch_reports(job.artifacts_url, job.where(), folder, caller.aws)
    except RunnerError as exc:  # the task's exit code still stands
        log.warning("the run's reports were not fetched: %s", exc.message)
        report = None
    if report is not None:
        publish_on_caller(report, caller.github)
    code = _exit_code(followed, judged)
    if judged.problem:
        print(
            f"dbt-runner: error: task {followed.task.get('taskArn')}: {judged.problem}",
            file=sys.stderr,
        )
    log.info("task %s stopped: exit code %d", followed.task.get("taskArn"), code)
    return code


def _exit_code(followed: Followed, judged: Verdict) -> int:
    if followed.stopped_by is not None:
        return 128 + followed.stopped_by
    if followed.timed_out:
        return TIMED_OUT_EXIT
    return judged.exit_code
