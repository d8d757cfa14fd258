"""`dbt-runner remote` against a local ECS (tests/ecs_standin.py) running the REAL image:
the project travels through moto's S3, the task's log through moto's CloudWatch Logs,
its reports come back to the caller's folder, step summary and pull request."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.ecs_standin import EcsStandIn, ecs_standin
from tests.fake_github import PR, REPOSITORY, TOKEN, FakeGitHub
from tests.sanity.conftest import DOCKER, docker
from tests.support import (
    DEMO,
    Fault,
    FaultProxy,
    Moto,
    Postgres,
    clean_env,
    copy_project,
    start_cli,
    wait_until,
)

GROUP = "/ecs/dbt-runner"
SLOW = "select 1 as id from (select pg_sleep(300)) as slow\n"


@pytest.fixture(scope="module")
def bucket(moto: Moto) -> str:
    name = f"remote-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def standin(moto: Moto) -> Iterator[EcsStandIn]:
    with ecs_standin(DOCKER, moto.client("logs"), moto.env) as running:
        yield running


def definition(family: str, image: str, bucket: str, **extra: Any) -> dict[str, Any]:
    """A task definition as the stack's, for the stand-in: the job's settings in its
    environment, its log in awslogs."""
    environment = {"DBT_RUNNER_ENV": "prod", "DBT_RUNNER_ARTIFACTS_URL": f"s3://{bucket}/artifacts"}
    environment |= extra.pop("environment", {})
    container = {
        "name": "dbt-runner",
        "image": image,
        "essential": True,
        "user": "10001",
        "command": ["run"],
        "stopTimeout": 20,
        "environment": [{"name": k, "value": v} for k, v in environment.items()],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": GROUP,
                "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "dbt",
            },
        },
    }
    return {"family": family, "memory": "2048", "containerDefinitions": [container | extra]}


def caller_env(
    tmp_path: Path, moto: Moto, standin: EcsStandIn, bucket: str, family: str
) -> dict[str, str]:
    project = tmp_path / "demo"
    if not project.exists():
        copy_project(DEMO, project)
    return clean_env(
        **moto.env,
        AWS_ENDPOINT_URL_ECS=standin.url,
        DBT_RUNNER_PROJECT_DIR=str(project),
        DBT_RUNNER_REPORT_DIR=str(tmp_path / "reports"),
        DBT_RUNNER_REMOTE__CLUSTER="sanity",
        DBT_RUNNER_REMOTE__TASK_DEFINITION=family,
        DBT_RUNNER_REMOTE__PROJECT_URL=f"s3://{bucket}/projects",
        DBT_RUNNER_REMOTE__POLL_S="0.3",
        DBT_RUNNER_REMOTE__DRAIN_S="1.5",
        DBT_RUNNER_REMOTE__STOP_WAIT_S="60",
    )


def remote(
    env: dict[str, str], tmp_path: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    out, err = (tmp_path / "caller.out").open("w+b"), (tmp_path / "caller.err").open("w+b")
    process = start_cli(["remote"], env, out, err, tmp_path)
    code = process.wait(timeout)
    said = [Path(f.name).read_text() for f in (out, err)]
    return subprocess.CompletedProcess(["dbt-runner", "remote"], code, *said)


def task_log(moto: Moto, task_arn: str) -> list[str]:
    """Every event of the task's stream, as CloudWatch holds it."""
    stream = f"dbt/dbt-runner/{task_arn.rsplit('/', 1)[-1]}"
    answer = moto.client("logs").get_log_events(
        logGroupName=GROUP, logStreamName=stream, startFromHead=True
    )
    return [event["message"] for event in answer["events"]]


def test_the_job_runs_as_a_task_and_everything_comes_back(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path, httpserver: HTTPServer
) -> None:
    family = standin.register(definition("dbt-runner-ok", image, bucket))
    github = FakeGitHub(httpserver)
    env = caller_env(tmp_path, moto, standin, bucket, family) | {
        "DBT_RUNNER_PR": PR,
        "DBT_RUNNER_GITHUB__TOKEN": TOKEN,  # the caller's: a secret, never sent to the task
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_API_URL": httpserver.url_for("").rstrip("/"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
    }
    standin.switches.throttled_describes = 3  # botocore's retries absorb them
    standin.switches.log_lag_s = 1.0  # each line reaches CloudWatch late, the last after the stop
    result = remote(env, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [task] = [t for t in standin.tasks.values() if t.definition["family"] == "dbt-runner-ok"]
    assert (task.last_status, task.stop_code, task.exit_code) == (
        "STOPPED",
        "EssentialContainerExited",
        0,
    )
    assert standin.throttled == 3
    # Every line the task wrote arrived, in order, none twice.
    events = task_log(moto, task.arn)
    assert len(events) > 20
    streamed = [line for line in result.stdout.splitlines() if line in set(events)]
    assert streamed == events
    # What the task received: the job's settings, the run id, the project's archive.
    sent = {e["name"]: e["value"] for e in task.overrides["environment"]}
    assert sent["DBT_RUNNER_PR"] == PR and sent["DBT_RUNNER_PROJECT_URL"].startswith(
        f"s3://{bucket}/projects/"
    )
    assert "DBT_RUNNER_GITHUB__TOKEN" not in sent and TOKEN not in json.dumps(task.overrides)
    assert "DBT_RUNNER_GITHUB__TOKEN is a secret: not sent to the task" in result.stdout
    # The reports, the step summary and one comment, on the caller's side.
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert (report["run_id"], report["status"], report["env"]) == (
        sent["DBT_RUNNER_RUN_ID"],
        "success",
        "prod",
    )
    for name in ("summary.md", "junit.xml", "report.html"):
        assert (tmp_path / "reports" / name).stat().st_size > 0
    assert (tmp_path / "reports" / "summary.md").read_text() in (
        tmp_path / "step-summary.md"
    ).read_text()
    assert len(github.comments) == 1 and f"Run `{report['run_id']}`" in github.comments[0]["body"]


def test_a_failing_job_exits_1_after_capacity_waits(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path
) -> None:
    family = standin.register(definition("dbt-runner-fails", image, bucket))
    env = caller_env(tmp_path, moto, standin, bucket, family)
    project = Path(env["DBT_RUNNER_PROJECT_DIR"])
    (project / "models" / "marts" / "broken.sql").write_text("select * from no_such_table\n")
    standin.switches.run_failures = [{"reason": "RESOURCE:MEMORY"}]
    calls = standin.calls.count("RunTask")
    result = remote(env, tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert standin.calls.count("RunTask") == calls + 2
    assert "ECS has no capacity yet (RESOURCE:MEMORY): attempt 2 of 6" in result.stdout
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["status"] == "failed"
    assert any(n["name"] == "broken" and n["status"] == "error" for n in report["nodes"])


def test_a_task_that_never_runs_says_why(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path
) -> None:
    missing = standin.register(definition("dbt-runner-no-image", f"{image}-no-such-tag", bucket))
    result = remote(caller_env(tmp_path, moto, standin, bucket, missing), tmp_path)
    assert result.returncode == 4
    [line] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "the task never ran: CannotPullContainerError" in line
    assert "VPC endpoints for ECR (api, dkr) and S3" in line
    # RunTask's own failure, not a capacity one: no wait, one line.
    denied = standin.register(definition("dbt-runner-denied", image, bucket))
    standin.switches.run_failures = [{"reason": "ACCESS_DENIED", "detail": "no ecs:RunTask"}]
    result = remote(caller_env(tmp_path, moto, standin, bucket, denied), tmp_path)
    assert result.returncode == 4
    assert "ECS did not start the task: ACCESS_DENIED: no ecs:RunTask" in result.stderr


def test_out_of_memory_is_exit_4_with_the_fix(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path
) -> None:
    family = standin.register(definition("dbt-runner-small", image, bucket) | {"memory": "48"})
    result = remote(caller_env(tmp_path, moto, standin, bucket, family), tmp_path)
    assert result.returncode == 4, result.stdout[-3000:] + result.stderr[-3000:]
    [task] = [t for t in standin.tasks.values() if t.definition["family"] == "dbt-runner-small"]
    assert task.exit_code == 137 and "OutOfMemoryError" in str(task.container_reason)
    assert (
        "OutOfMemoryError" in result.stderr
        and "raise the task definition's memory" in result.stderr
    )


def test_a_rerun_reattaches_and_a_sigterm_stops_the_task(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path, postgres: Postgres
) -> None:
    warehouse = postgres.warehouse_env(f"remote_{uuid.uuid4().hex[:6]}")
    family = standin.register(definition("dbt-runner-pg", image, bucket, environment=warehouse))
    env = caller_env(tmp_path, moto, standin, bucket, family) | {
        "DBT_RUNNER_REMOTE__STARTED_BY": "gh-1-1-dbt"
    }
    (Path(env["DBT_RUNNER_PROJECT_DIR"]) / "models" / "marts" / "slow_model.sql").write_text(SLOW)
    runs = standin.calls.count("RunTask")
    first_out = (tmp_path / "first.out").open("w+b")
    first = start_cli(["remote"], env, first_out, first_out, tmp_path)
    wait_until(
        lambda: "slow_model" in Path(first_out.name).read_text(), 300, "the slow model to start"
    )
    first.send_signal(signal.SIGKILL)  # the workflow's runner is lost: nothing stops the task
    first.wait(30)
    [task] = [t for t in standin.tasks.values() if t.definition["family"] == "dbt-runner-pg"]
    assert task.last_status == "RUNNING"
    second_out = (tmp_path / "second.out").open("w+b")
    second = start_cli(["remote"], env, second_out, second_out, tmp_path)

    def said() -> str:
        return Path(second_out.name).read_text()

    wait_until(lambda: "re-attached to task" in said(), 60, "the rerun to re-attach")
    assert standin.calls.count("RunTask") == runs + 1  # the first caller's only
    assert [t.arn for t in standin.tasks.values() if t.definition["family"] == family] == [task.arn]
    second.send_signal(signal.SIGTERM)  # the workflow is cancelled
    assert second.wait(120) == 143, said()[-3000:]
    assert (task.last_status, task.stop_code) == ("STOPPED", "UserInitiated")
    assert "the caller was stopped (SIGTERM)" in str(task.stopped_reason)
    gone = docker("ps", "-a", "--filter", f"name=ecs-{task.id}", "--format", "{{.ID}}")
    assert gone.stdout.strip() == ""
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["status"] == "interrupted"


def test_the_actions_run_on_ecs_passes_exit_codes_and_reports_through(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path
) -> None:
    """The Action's step (its script, as a workflow runs it) with `run-on: ecs`: the
    caller is the image itself, on the runner; the job is a task."""
    from tests.sanity.test_action import run_step

    ok = standin.register(definition("dbt-runner-action", image, bucket))
    no_image = standin.register(definition("dbt-runner-action-x", f"{image}-no-such-tag", bucket))
    repo, temp = tmp_path / "repo", tmp_path / "temp"
    temp.mkdir()
    project = copy_project(DEMO, repo / "analytics")
    step_env = moto.env | {
        "AWS_ENDPOINT_URL_ECS": standin.url,
        "DBT_RUNNER_REMOTE__POLL_S": "0.3",
        "DBT_RUNNER_REMOTE__DRAIN_S": "1.5",
    }
    inputs = {"image": image, "run_on": "ecs", "cluster": "sanity", "docker_network": "host"}
    inputs |= {"project_url": f"s3://{bucket}/projects"}
    step_env.pop("AWS_CONFIG_FILE"), step_env.pop("AWS_SHARED_CREDENTIALS_FILE")  # host paths

    code, outputs, summary = run_step(repo, temp, step_env, task_definition=ok, **inputs)
    assert (code, outputs["exit-code"], outputs["status"]) == (0, "0", "success"), (
        temp / "step.log"
    ).read_text()[-3000:]
    assert "dbt-runner demo/prod full: success" in summary
    assert "phase build: success" in (temp / "step.log").read_text()  # the task's log, streamed

    (project / "models" / "marts" / "broken.sql").write_text("select * from no_such_table\n")
    code, outputs, _ = run_step(repo, temp, step_env, task_definition=ok, **inputs)
    assert (code, outputs["exit-code"], outputs["status"]) == (1, "1", "failed")

    code, outputs, _ = run_step(repo, temp, step_env, task_definition=no_image, **inputs)
    # No report: the last run's, still in the folder, is not this one's.
    assert (code, outputs["exit-code"], outputs["status"]) == (4, "4", "unknown")
    assert not Path(outputs["report"]).exists()


def test_reports_that_cannot_be_fetched_leave_the_tasks_exit_code(
    image: str, moto: Moto, standin: EcsStandIn, bucket: str, tmp_path: Path
) -> None:
    """The caller may not read the run's reports (its S3 refuses them): a warning, and
    the exit code is still the task's (1), not the fetch's (it was 4)."""
    family = standin.register(definition("dbt-runner-unread", image, bucket))
    env = caller_env(tmp_path, moto, standin, bucket, family)
    (Path(env["DBT_RUNNER_PROJECT_DIR"]) / "models" / "marts" / "broken.sql").write_text(
        "select * from no_such_table\n"
    )
    with FaultProxy(moto.endpoint) as proxy:
        proxy.faults.append(Fault(403, "AccessDenied", method="GET", path_contains="/runs/"))
        result = remote(env | {"AWS_ENDPOINT_URL_S3": proxy.endpoint}, tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the run's reports were not fetched" in result.stdout
    assert any(status == 403 for _, _, status in proxy.errors())
