"""`dbt-runner remote`: where the job runs as an ECS task (DBT_RUNNER_REMOTE__*), and
the few job settings the caller itself needs (`RemoteCaller`). The job's own settings
are the task's to validate: the caller forwards them, and the task definition may hold
the rest (a state URL, credentials) that the caller never sees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dbt_runner.aws import AwsSettings
from dbt_runner.config import checks
from dbt_runner.config.review import GitHubSettings
from dbt_runner.config.values import ENV_PREFIX, NESTED_DELIMITER, new_run_id, setting, split_list
from dbt_runner.errors import ConfigError


class RemoteSettings(BaseModel):
    """Where `dbt-runner remote` starts the job (one ECS task), and how it follows it."""

    model_config = ConfigDict(extra="forbid")

    cluster: str | None = setting(None, "ECS cluster (name or ARN) the task runs in")
    task_definition: str | None = setting(
        None, "task definition (`family[:revision]` or ARN), such as the stack's"
    )
    container: str = setting("dbt-runner", "the task definition's container that runs the job")
    subnets: Annotated[list[str], NoDecode] = setting(
        default_factory=list,
        description="awsvpc subnets, comma-separated (private ones need VPC endpoints for "
        "ECR, S3 and CloudWatch Logs, or a NAT gateway)",
        shown="`[]`",
    )
    security_groups: Annotated[list[str], NoDecode] = setting(
        default_factory=list, description="awsvpc security groups, comma-separated", shown="`[]`"
    )
    assign_public_ip: bool = setting(False, "give the task a public IP (public subnets)")
    launch_type: Literal["FARGATE", "EC2"] = setting("FARGATE", "the task's launch type")
    project_url: str | None = setting(
        None,
        "s3:// or file:// prefix the caller packs the project to (`<sha256>.tar.gz`, passed "
        "as DBT_RUNNER_PROJECT_URL); unset: the image's own project runs",
    )
    started_by: str | None = setting(
        None,
        "the task's `startedBy`: a caller with the same one re-attaches to its running task",
        shown="from GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT and GITHUB_JOB in a workflow",
    )
    deadline_s: float = setting(
        14400.0, "stop the task and exit 124 after this many seconds of following it", gt=0
    )
    poll_s: float = setting(2.0, "seconds between DescribeTasks calls and log reads", gt=0)
    start_attempts: int = setting(
        6, "RunTask attempts while ECS has no capacity, with exponential backoff", ge=1, le=20
    )
    stop_wait_s: float = setting(
        120.0, "after SIGINT or SIGTERM: seconds to wait for the stopped task", gt=0
    )
    drain_s: float = setting(
        2.0,
        "after the task stopped: seconds with no new log event before the log is complete",
        gt=0,
    )

    _lists = field_validator("subnets", "security_groups", mode="before")(split_list)
    _project = field_validator("project_url")(checks.storage_url)


class RemoteCaller(BaseSettings):
    """What the caller of `remote` reads: where to run, which project, the run's id,
    where its reports land locally, and the pull request's comment (the same variables
    as Settings's, documented there); every other DBT_RUNNER_* setting is the task's."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="ignore"
    )

    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    project_dir: Path = Path()
    run_id: str = Field(default_factory=new_run_id)
    report_dir: Path | None = None
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)

    _project = field_validator("project_dir")(checks.project_folder)


def load_remote() -> RemoteCaller:
    """The caller's settings, or ConfigError naming the problem."""
    from dbt_runner.config.load import describe_error

    try:
        caller = RemoteCaller()
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, {})) from None
    for name in ("cluster", "task_definition"):
        if not getattr(caller.remote, name):
            raise ConfigError(
                f"DBT_RUNNER_REMOTE__{name.upper()} is required: the ECS "
                + ("cluster to run in" if name == "cluster" else "task definition to run")
            )
    return caller
