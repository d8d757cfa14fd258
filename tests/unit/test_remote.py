"""`dbt-runner remote`'s decisions that need no ECS: what a stopped task's exit code is,
what the task is sent, and the `startedBy` a rerun finds its task by."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_runner.remote.overrides import forwarded, secret_names, started_by
from dbt_runner.remote.verdict import verdict


def stopped(stop_code: str, reason: str = "", **container: Any) -> dict[str, Any]:
    containers = [{"name": "sidecar", "exitCode": 0}, {"name": "dbt-runner", **container}]
    return {"stopCode": stop_code, "stoppedReason": reason, "containers": containers}


def test_the_jobs_container_decides_found_by_name_not_position() -> None:
    assert verdict(stopped("EssentialContainerExited", exitCode=1), "dbt-runner").exit_code == 1
    assert verdict(stopped("EssentialContainerExited", exitCode=0), "dbt-runner").problem is None


@pytest.mark.parametrize(
    ("task", "says"),
    [
        (
            stopped("TaskFailedToStart", "CannotPullContainerError: pull access denied"),
            "ECR (api, dkr)",
        ),
        (
            stopped("TaskFailedToStart", "ResourceInitializationError: unable to pull secrets"),
            "Secrets Manager",
        ),
        (
            stopped("EssentialContainerExited", exitCode=137, reason="OutOfMemoryError: killed"),
            "memory",
        ),
        (
            stopped("SpotInterruption", "Your Spot Task was interrupted.", exitCode=143),
            "retry resumes",
        ),
        (stopped("EssentialContainerExited", "Essential container in task exited"), "no exit code"),
        ({"stopCode": "TaskFailedToStart", "containers": [{"name": "other"}]}, "no container"),
    ],
)
def test_a_task_that_did_not_decide_is_exit_4_with_the_cause(
    task: dict[str, Any], says: str
) -> None:
    judged = verdict(task, "dbt-runner")
    assert judged.exit_code == 4 and says in str(judged.problem)


def test_the_task_gets_the_jobs_settings_and_no_secret_or_callers_own() -> None:
    secrets = secret_names()
    assert {"DBT_RUNNER_WAREHOUSE__PASSWORD", "DBT_RUNNER_GITHUB__TOKEN"} <= secrets
    environ = {
        "DBT_RUNNER_SELECT": "tag:daily",
        "DBT_RUNNER_SLIM__CHILDREN": "all",
        "DBT_RUNNER_WAREHOUSE__PASSWORD": "hunter2",
        "DBT_RUNNER_PROJECT_DIR": "/home/runner/work/repo",
        "DBT_RUNNER_REMOTE__CLUSTER": "prod",
        "DBT_RUNNER_ARTIFACTS_URL": "/out",  # the image's own default, when the caller is it
        "DBT_RUNNER_STATE_URL": "s3://bucket/state",
        "GITHUB_SHA": "abc123",
        "GITHUB_TOKEN": "ghs_x",
        "HOME": "/root",
    }
    assert forwarded(environ, secrets) == {
        "DBT_RUNNER_SELECT": "tag:daily",
        "DBT_RUNNER_STATE_URL": "s3://bucket/state",
        "DBT_RUNNER_SLIM__CHILDREN": "all",
        "GITHUB_SHA": "abc123",
    }


def test_a_rerun_of_the_same_attempt_finds_the_same_task(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "dbt",
    }.items():
        monkeypatch.setenv(name, value)
    first = started_by(None, "run-a", "demo/prod")
    assert started_by(None, "run-b", "demo/prod") == first and len(first) <= 36
    assert started_by(None, "run-a", "demo/dev") != first  # a matrix's other env
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    assert started_by(None, "run-a", "demo/prod") != first  # a new attempt starts anew
    monkeypatch.delenv("GITHUB_RUN_ID")
    assert started_by(None, "run-a", "demo/prod") != started_by(None, "run-b", "demo/prod")
    assert started_by("mine", "run-a", "demo/prod") == "mine"
