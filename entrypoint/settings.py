"""Settings: the whole job as one validated pydantic-settings model.

Every setting is an environment variable `DBT_RUNNER_<NAME>` (nested groups with
`__`, e.g. `DBT_RUNNER_WAREHOUSE__TYPE`) and, for the everyday ones, a CLI flag that
overrides it (declared here, on the field, with `flag=`). Every field carries its
description: the README's settings tables are generated from this module
(`make settings-doc`). Validation happens before anything runs; a problem becomes one
`ConfigError` line naming the variable (or flag), the bad value and what is accepted.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from entrypoint.aws import AwsSettings
from entrypoint.errors import ConfigError
from entrypoint.storage import local_folder, normalise_url

ENV_PREFIX = "DBT_RUNNER_"
NESTED_DELIMITER = "__"


def setting(
    default: Any = ...,
    description: str = "",
    *,
    flag: str | None = None,
    short: str | None = None,
    shown: str | None = None,
    **options: Any,
) -> Any:
    """A documented field: `flag` (and `short`) make it a CLI flag too; `shown` is the
    default as the README states it, for defaults computed at run time."""
    extra: dict[str, Any] = {"flag": flag, "short": short, "shown": shown}
    if "default_factory" not in options:
        options["default"] = default
    return Field(description=description, json_schema_extra=extra, **options)


class Job(StrEnum):
    FULL = "full"
    SLIM = "slim"
    FRESH = "fresh"
    CUSTOM = "custom"


# Jobs that build what changed since the state, deferring the rest to it.
STATE_JOBS = {Job.SLIM, Job.FRESH}


class Phase(StrEnum):
    """dbt phases, declared in the order a job runs them."""

    DEPS = "deps"
    DEBUG = "debug"
    LINT = "lint"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    RUN = "run"
    TEST = "test"
    BUILD = "build"
    FRESHNESS = "freshness"
    DOCS = "docs"


PHASE_ORDER = list(Phase)

JOB_PHASES: dict[Job, list[Phase]] = {
    Job.FULL: [Phase.DEPS, Phase.DEBUG, Phase.SEED, Phase.BUILD, Phase.FRESHNESS, Phase.DOCS],
    # As dbt Cloud's CI jobs: no debug (build fails just as clearly), build only.
    Job.SLIM: [Phase.DEPS, Phase.BUILD],
    # Freshness first: the build selects what has new data (source_status:fresher+).
    Job.FRESH: [Phase.DEPS, Phase.FRESHNESS, Phase.BUILD],
}
# Phases that build relations in the warehouse: a job without one never sets state.
BUILDING_PHASES = {Phase.BUILD, Phase.RUN}
# Phases that write to the warehouse at all.
WRITING_PHASES = {Phase.SEED, Phase.SNAPSHOT, *BUILDING_PHASES}


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Adapter(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    REDSHIFT = "redshift"
    BIGQUERY = "bigquery"


class MetricsMode(StrEnum):
    AUTO = "auto"  # EMF when the log is JSON lines (CloudWatch), else none
    EMF = "emf"
    OFF = "off"


class Concurrency(StrEnum):
    """What a run does when another run of its env holds the lease."""

    SKIP = "skip"  # end at once: status skipped, exit 0
    WAIT = "wait"  # wait for it, at most DBT_RUNNER_CONCURRENCY_WAIT_S
    FAIL = "fail"  # exit 4


class ProfileSource(StrEnum):
    """Which profiles.yml a run uses."""

    AUTO = "auto"  # DBT_RUNNER_PROFILES_DIR, DBT_PROFILES_DIR, the project's, else rendered
    RENDERED = "rendered"  # always rendered from DBT_RUNNER_WAREHOUSE__*
    EXISTING = "existing"  # never rendered: a missing profiles.yml is an error


def _split_list(value: Any) -> Any:
    """Comma- or space-separated text from the environment becomes a list."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value.strip()) if part]
    return value


def _phase_list(value: Any) -> list[Phase]:
    items = _split_list(value)
    if not isinstance(items, list):
        raise ValueError("expected a comma-separated list of phases")
    phases: list[Phase] = []
    for item in items:
        name = str(item).strip().lower()
        try:
            phase = Phase(name)
        except ValueError:
            close = difflib.get_close_matches(name, [p.value for p in Phase], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"'{item}' is not a phase{hint}; accepted: {', '.join(p.value for p in Phase)}"
            ) from None
        if phase in phases:
            raise ValueError(f"'{name}' is listed twice")
        phases.append(phase)
    # Phases always run in the data path's order, whatever order they were listed in.
    return sorted(phases, key=PHASE_ORDER.index)


PhaseList = Annotated[list[Phase], NoDecode]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def http_url(value: str, example: str = "https://hooks.example.com/...") -> str:
    """The one http(s) URL check every URL setting shares."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https:// (e.g. {example})")
    return value


def _secret_http_url(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        http_url(value.get_secret_value())
    return value


def _json_object(value: Any, example: str) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not valid JSON ({exc.msg}); expected an object like {example}"
            ) from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object like {example}")
    return value


class WarehouseSettings(BaseModel):
    """Connection fields used when the runner renders profiles.yml for an adapter.

    Ignored when the run uses an existing profiles.yml (see DBT_RUNNER_PROFILE_SOURCE).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Adapter = setting(
        Adapter.DUCKDB, "adapter of the rendered profile: duckdb, postgres, redshift, bigquery"
    )
    host: str | None = setting(None, "server host name (postgres, redshift)")
    port: int | None = setting(
        None, "server port (postgres, redshift)", shown="5432 / 5439", ge=1, le=65535
    )
    user: str | None = setting(None, "database user (postgres, redshift)")
    password: SecretStr | None = setting(
        None,
        "secret: reaches dbt as DBT_ENV_SECRET_WAREHOUSE_PASSWORD, never written to disk",
    )
    database: str | None = setting(None, "database name (postgres, redshift)")
    schema_: str | None = setting(
        None,
        "target schema (postgres, redshift, duckdb) or dataset (bigquery)",
        shown="`public` (postgres, redshift)",
        alias="schema",
    )
    path: str | None = setting(
        None,
        "DuckDB database file; relative paths are taken from the working directory; its "
        "folder is created",
        shown="`WORK_DIR/<project>-<env>.duckdb`",
    )
    sslmode: str | None = setting(None, "postgres / redshift `sslmode`")
    project: str | None = setting(None, "BigQuery project id")
    location: str | None = setting(None, "BigQuery location")
    method: str | None = setting(
        None,
        "BigQuery auth method; `oauth` is application default credentials",
        shown="`oauth` (`service-account` with a key file)",
    )
    keyfile: Path | None = setting(None, "BigQuery service-account key file")
    extra: Annotated[dict[str, Any], NoDecode] = setting(
        default_factory=dict,
        description='JSON object merged into the rendered output (`{"keepalives_idle": 30}`)',
        shown="`{}`",
    )

    @field_validator("extra", mode="before")
    @classmethod
    def _parse_extra(cls, value: Any) -> Any:
        return _json_object(value, '{"keepalives_idle": 30}')


class CredentialsSettings(BaseModel):
    """Where connection fields come from at run time. Every source that is set is
    used, in this order, a later one overriding an earlier: Glue connection, Secrets
    Manager secret, SSM parameters, Redshift IAM."""

    model_config = ConfigDict(extra="forbid")

    glue_connection: str | None = setting(
        None, "AWS Glue connection name: host, port, database, user and password"
    )
    secret_id: str | None = setting(
        None,
        "Secrets Manager secret id or ARN: JSON connection fields or a BigQuery key",
    )
    ssm_path: str | None = setting(
        None, "SSM Parameter Store path whose parameters are named for their field"
    )
    ssm_parameters: Annotated[dict[str, str], NoDecode] = setting(
        default_factory=dict,
        description='JSON map of field to SSM parameter name (`{"password": "/dbt/pw"}`)',
        shown="`{}`",
    )
    redshift_cluster_id: str | None = setting(
        None, "provisioned Redshift cluster: temporary credentials from GetClusterCredentials"
    )
    redshift_workgroup: str | None = setting(
        None, "Redshift Serverless workgroup: temporary credentials from GetCredentials"
    )
    redshift_db_user: str | None = setting(
        None, "database user for GetClusterCredentials (required with a cluster id)"
    )
    redshift_auto_create: bool = setting(
        False, "let GetClusterCredentials create the database user"
    )
    redshift_duration_s: int = setting(
        900, "lifetime of Redshift temporary credentials, seconds", ge=900, le=3600
    )

    @field_validator("ssm_parameters", mode="before")
    @classmethod
    def _parse_parameters(cls, value: Any) -> Any:
        return _json_object(value, '{"password": "/dbt/prod/password"}')

    @model_validator(mode="after")
    def _consistent(self) -> CredentialsSettings:
        if self.redshift_cluster_id and self.redshift_workgroup:
            raise ValueError(
                "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID and "
                "DBT_RUNNER_CREDENTIALS__REDSHIFT_WORKGROUP are exclusive: one is a "
                "provisioned cluster, the other Redshift Serverless"
            )
        if self.redshift_cluster_id and not self.redshift_db_user:
            raise ValueError(
                "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID needs "
                "DBT_RUNNER_CREDENTIALS__REDSHIFT_DB_USER (the database user to log in as)"
            )
        return self

    @property
    def configured(self) -> bool:
        return bool(
            self.glue_connection
            or self.secret_id
            or self.ssm_path
            or self.ssm_parameters
            or self.redshift_cluster_id
            or self.redshift_workgroup
        )


class Policy(StrEnum):
    """When a channel is notified."""

    ALWAYS = "always"
    FAILURE = "failure"
    SUCCESS = "success"
    NEVER = "never"


class Trigger(BaseModel):
    """A URL called after a successful run (a BI tool's sync, an Airflow DAG run).

    Header values are literal, `env:NAME` (read from a variable) or
    `secret:SECRET_ID` / `secret:SECRET_ID#key` (read from Secrets Manager)."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None

    _http = field_validator("url")(_secret_http_url)


class NotifySettings(BaseModel):
    """Notifications for every run, configured by environment (DBT_RUNNER_NOTIFY__*)."""

    model_config = ConfigDict(extra="forbid")

    slack_webhook_url: SecretStr | None = setting(
        None,
        "Slack incoming webhook: status, project, env, job, duration, node counts, the first "
        "failures with their messages, links to docs and run",
    )
    slack_policy: Policy = setting(
        Policy.ALWAYS, "when Slack is told: `always`, `failure`, `success` or `never`"
    )
    webhook_url: SecretStr | None = setting(None, "generic webhook: the run summary as JSON")
    webhook_secret: SecretStr | None = setting(
        None,
        "signs the webhook body: `X-Dbt-Runner-Signature-256: sha256=<hex HMAC-SHA256 of the "
        "raw body>`",
    )
    webhook_policy: Policy = setting(
        Policy.ALWAYS, "when the webhook is called: `always`, `failure`, `success` or `never`"
    )
    triggers: Annotated[list[Trigger], NoDecode] = setting(
        default_factory=list,
        description="called after a successful run: comma-separated URLs, or JSON "
        '`[{"url": ..., "method": "POST", "headers": {"Authorization": "env:AIRFLOW_AUTH"}, '
        '"body": {"conf": {}}}]`; header values are literal, `env:NAME` or '
        "`secret:SECRET_ID[#key]` (Secrets Manager)",
        shown="none",
    )
    timeout_s: float = setting(10, "per-call timeout, seconds", gt=0, le=120)
    retries: int = setting(
        2, "bounded retries per call (backoff; 429, 5xx and connection errors)", ge=0, le=5
    )
    max_failures: int = setting(
        10, "failures listed in a message (the rest are counted)", ge=1, le=100
    )
    owners: Annotated[dict[str, SecretStr], NoDecode] = setting(
        default_factory=dict,
        description="JSON map of a node's owner (its `meta.owner`, else its dbt group's "
        'owner name or email) to a Slack-compatible incoming webhook: `{"finance": '
        '"https://hooks.slack.com/..."}`; each owner with failures gets one message with '
        "only theirs (a test's owner is its model's), besides the job's",
        shown="`{}`",
    )

    _http = field_validator("slack_webhook_url", "webhook_url")(_secret_http_url)

    @field_validator("owners", mode="before")
    @classmethod
    def _parse_owners(cls, value: Any) -> Any:
        return _json_object(value, '{"finance": "https://hooks.slack.com/services/..."}')

    @field_validator("owners")
    @classmethod
    def _owner_urls(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for url in value.values():
            _secret_http_url(url)
        return value

    @field_validator("triggers", mode="before")
    @classmethod
    def _parse_triggers(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not valid JSON ({exc.msg})") from None
            # A plain list of URLs, comma-separated.
            return [{"url": url} for url in _split_list(text)]
        return value


class SlimSettings(BaseModel):
    """How a slim job selects and defers (DBT_RUNNER_JOB=slim)."""

    model_config = ConfigDict(extra="forbid")

    select: str = setting(
        "state:modified+",
        "what a slim job builds: `state:modified`, `state:modified+1`, ...; "
        "DBT_RUNNER_SELECT adds to it, DBT_RUNNER_EXCLUDE removes",
    )
    defer: bool = setting(True, "dbt's `--defer`: unselected parents come from the state")
    favor_state: bool = setting(False, "dbt's `--favor-state`")
    defer_env: str | None = setting(
        None,
        "read another environment's state: a CI job deferring to `prod`",
        shown="the env",
    )


class FreshSettings(BaseModel):
    """How a fresh job skips (DBT_RUNNER_JOB=fresh)."""

    model_config = ConfigDict(extra="forbid")

    build_after: str | None = setting(
        None,
        "the job's lag tolerance: a model whose only reason to build is new data is left "
        "as it is when it was built within this interval (`4h`, `30m`, `1d`); a model's "
        "`meta.build_after` wins",
    )

    @field_validator("build_after")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            from entrypoint.fresh import interval

            interval(value)
        return value


class LineageSettings(BaseModel):
    """OpenLineage run events, sent when the run ends (DBT_RUNNER_LINEAGE__*)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = setting(
        None,
        "an OpenLineage HTTP endpoint (Marquez, DataHub, ...): events go to "
        "`<url>/api/v1/lineage`; unset, no events",
    )
    api_key: SecretStr | None = setting(None, "sent as `Authorization: Bearer <key>`")
    namespace: str = setting(
        "dbt-runner", "the jobs' namespace (datasets are named by their warehouse)"
    )
    timeout_s: float = setting(
        5, "per-event timeout, seconds; the first event that fails stops the rest", gt=0, le=60
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


class HistorySettings(BaseModel):
    """Run history: node results appended under `<artifacts>/<project>/<env>/history/`,
    read back to find regressions and flaky tests (DBT_RUNNER_HISTORY__*)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = setting(True, "write this run's node results to the history and compare")
    runs: int = setting(
        10, "how many recent runs a node is compared with (its median, its failures)", ge=2, le=100
    )
    days: int = setting(30, "how far back the history is read for those runs, days", ge=1, le=366)
    min_runs: int = setting(
        3, "successful earlier runs a node needs before it can be a regression", ge=1, le=100
    )
    slower_ratio: float = setting(
        2.0, "a regression takes at least this many times the node's median...", gt=1
    )
    slower_floor_s: float = setting(30.0, "...and at least this many seconds more than it", ge=0)


class Settings(BaseSettings):
    """The job: read from DBT_RUNNER_* variables, overridden by CLI flags."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    project_dir: Path = setting(
        Path(), "folder holding `dbt_project.yml`", flag="--project-dir", shown="`.`"
    )
    profiles_dir: Path | None = setting(
        None, "folder with a `profiles.yml` to use as is (see Profiles)", flag="--profiles-dir"
    )
    profile_source: ProfileSource = setting(
        ProfileSource.AUTO,
        "`auto`: DBT_RUNNER_PROFILES_DIR, DBT_PROFILES_DIR, the project's profiles.yml, else "
        "one rendered from DBT_RUNNER_WAREHOUSE__*; `rendered`: always rendered (an image "
        "`FROM` the runner whose project ships another profile); `existing`: never rendered",
        flag="--profile-source",
    )
    target: str | None = setting(None, "dbt target", flag="--target", short="-t", shown="the env")
    env: str = setting(
        "dev",
        "environment name (`dev`, `prod`, ...): in paths, reports, notifications",
        flag="--env",
    )
    job: Job = setting(
        Job.FULL,
        "`full` (deps, debug, seed, build, freshness, docs), `slim` (deps, build of what "
        "changed: see Slim jobs), `fresh` (deps, freshness, build of what has new data or "
        "changed: see Source-aware builds), `custom` (DBT_RUNNER_PHASES)",
        flag="--job",
    )
    phases: PhaseList | None = setting(
        None,
        "comma-separated phases: `deps, debug, lint, seed, snapshot, run, test, build, "
        "freshness, docs`; always run in that order",
        flag="--phases",
        shown="the job's",
    )
    advisory_phases: PhaseList = setting(
        default_factory=lambda: [Phase.LINT, Phase.FRESHNESS, Phase.DOCS],
        description="phases whose failure is reported but does not fail the job (as in dbt "
        "Cloud); empty to make all count",
        shown="`lint,freshness,docs`",
    )
    select: str | None = setting(
        None,
        "dbt selection (space-separated, as dbt's `--select`) for seed, snapshot, run, test, "
        "build, freshness",
        flag="--select",
        short="-s",
    )
    exclude: str | None = setting(None, "dbt exclusion", flag="--exclude")
    selector: str | None = setting(
        None, "a YAML selector (not with select/exclude)", flag="--selector"
    )
    threads: int | None = setting(
        None, "dbt threads", flag="--threads", shown="profile's (4 when rendered)", ge=1, le=256
    )
    vars: Annotated[dict[str, Any], NoDecode] = setting(
        default_factory=dict,
        description="JSON or YAML mapping, as dbt's `--vars`",
        flag="--vars",
        shown="`{}`",
    )
    full_refresh: bool = setting(
        False, "rebuild incremental models and seeds", flag="--full-refresh"
    )
    fail_fast: bool = setting(False, "stop at the first failing node", flag="--fail-fast")
    unmatched_selection: Literal["warn", "fail"] = setting(
        "warn",
        "a `--select`, `--exclude` or selector criterion that matches no node: `warn` (in the "
        "report, summary and notifications; dbt only logs it) or `fail` (exit 3: a "
        "scheduled job whose selection names nothing is misconfigured)",
    )
    timeout_s: float | None = setting(
        None,
        "cancel the run after this many seconds, like a SIGTERM: queries cancelled, report "
        "written, status `timed_out`, exit code 124",
        flag="--timeout",
        gt=0,
    )
    artifacts_url: str = setting(
        "out",
        "`file:///path`, a plain path, or `s3://bucket/prefix`",
        flag="--artifacts-url",
        shown="`out`",
    )
    artifacts_public_url: str | None = setting(
        None,
        "an http(s) address serving the artifacts URL (CloudFront, an S3 website): links in "
        "reports and notifications use it",
    )
    report_dir: Path | None = setting(
        None,
        "where `report.json`, `summary.md`, `junit.xml` are written locally",
        flag="--report-dir",
        shown="artifacts folder, or `WORK_DIR/report` for S3",
    )
    work_dir: Path = setting(
        Path(tempfile.gettempdir()) / "dbt-runner",
        "scratch: rendered profiles, each run's target and logs, caches; must be writable",
        shown="`$TMPDIR/dbt-runner`",
    )
    log_format: LogFormat = setting(
        LogFormat.TEXT,
        "`json` for JSON lines (CloudWatch): the runner's, dbt's and every library's lines",
        flag="--log-format",
    )
    metrics: MetricsMode = setting(
        MetricsMode.AUTO,
        "`emf`: the run's metrics in CloudWatch's Embedded Metric Format on stdout (see "
        "Metrics and alarms); `auto`: `emf` when DBT_RUNNER_LOG_FORMAT=json; `off`",
    )
    metrics_namespace: str = setting(
        "dbt-runner", "the CloudWatch namespace of the run's metrics", min_length=1, max_length=255
    )
    metrics_per_node: bool = setting(
        False, "also a metric document per node (duration, status), with a Node dimension"
    )
    run_id: str = setting(
        default_factory=new_run_id,
        description="the run's id, in paths and reports",
        flag="--run-id",
        shown="UTC time + random",
    )
    state_url: str | None = setting(
        None,
        "where the last good run's state is kept (`s3://` or `file://`): see Slim jobs",
    )
    concurrency: Concurrency = setting(
        Concurrency.SKIP,
        "when another run of the same project and env (and pull request) holds its lease: "
        "`skip` (end at once, status `skipped`, exit 0), `wait` (for it), `fail` (exit 4); "
        "runs that only lint or read take no lease",
        flag="--concurrency",
    )
    concurrency_wait_s: float = setting(
        3600, "how long `wait` waits for the lease before failing (exit 4), seconds", gt=0
    )
    lease_ttl_s: float = setting(
        120,
        "a lease its run stopped renewing (a killed run's) expires after this many seconds "
        "and is taken over; a run renews its lease every third of it",
        ge=3,
        le=3600,
    )
    pr: str | None = setting(
        None,
        "a pull request's number or branch-safe name: every relation the run creates goes "
        "into that pull request's schemas (see Pull-request environments); the job defaults "
        "to slim, deferring to `prod`; lower-cased, '-' and '_' dropped (`Feature_2` is "
        "`feature2`), so no pull request's schemas start with another's",
        flag="--pr",
    )
    pr_schema: str = setting(
        "{schema}_pr_{pr}",
        "the schema of a pull request's relations: `{schema}` is the target's, `{pr}` the "
        "pull request; dbt's default generate_schema_name puts custom schemas under it",
    )
    slim: SlimSettings = Field(default_factory=SlimSettings)
    fresh: FreshSettings = Field(default_factory=FreshSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)

    @field_validator("phases", "advisory_phases", mode="before")
    @classmethod
    def _parse_phases(cls, value: Any) -> Any:
        return None if value is None else _phase_list(value)

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value):
            raise ValueError(
                "use lower-case letters, digits, '-' or '_', starting with a letter (e.g. prod)"
            )
        return value

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value):
            raise ValueError("use letters, digits, '.', '-' or '_' (it becomes part of paths)")
        return value

    @field_validator("pr")
    @classmethod
    def _pr(cls, value: str | None) -> str | None:
        if not value:  # unset, or empty (a workflow's push event has no pull request)
            return None
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", value):
            raise ValueError(
                "use the pull request's number or a branch-safe name (letters, digits, '-', '_')"
            )
        # Part of schema names, and never an underscore: then no pull request's schemas
        # can start with another's (`feature` and `feature_2` would: pr.py).
        return re.sub(r"[-_]", "", value.lower())

    @field_validator("pr_schema")
    @classmethod
    def _pr_schema(cls, value: str) -> str:
        if "{schema}" not in value or "{pr}" not in value:
            raise ValueError("must contain {schema} and {pr}, e.g. '{schema}_pr_{pr}'")
        return value

    @field_validator("vars", mode="before")
    @classmethod
    def _parse_vars(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                # dbt's own --vars takes YAML, of which JSON is a subset.
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or "cannot be parsed"
                raise ValueError(
                    f"not valid JSON or YAML ({problem}); "
                    """expected a mapping such as '{"start_date": "2026-01-01"}'"""
                ) from None
        if not isinstance(value, dict):
            raise ValueError("""expected a mapping such as '{"start_date": "2026-01-01"}'""")
        return value

    @field_validator("project_dir")
    @classmethod
    def _project_exists(cls, value: Path) -> Path:
        path = value.expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"no folder {path}; set it to the folder that holds dbt_project.yml")
        if not (path / "dbt_project.yml").is_file():
            raise ValueError(f"no dbt_project.yml in {path}; set it to your dbt project's folder")
        return path

    @field_validator("profiles_dir")
    @classmethod
    def _profiles_exist(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser().resolve()
        if not (path / "profiles.yml").is_file():
            raise ValueError(
                "no profiles.yml in this folder; unset it to let the runner render one"
            )
        return path

    @field_validator("artifacts_url")
    @classmethod
    def _artifacts_url(cls, value: str) -> str:
        return normalise_url(value)

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        return None if value is None else normalise_url(value)

    @field_validator("artifacts_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return http_url(value, "https://docs.example.com/dbt").rstrip("/")

    @field_validator("work_dir", "report_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @model_validator(mode="after")
    def _pull_request_defaults(self) -> Settings:
        """A pull request builds what changed, deferring to production, when it can."""
        if self.pr is None:
            return self
        if "job" not in self.model_fields_set and self.state_url:
            self.job = Job.SLIM
        if self.slim.defer_env is None:
            self.slim.defer_env = "prod"
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.job is Job.CUSTOM and not self.phases:
            raise ValueError(
                "DBT_RUNNER_JOB=custom needs DBT_RUNNER_PHASES (e.g. 'deps,seed,build')"
            )
        if self.job in STATE_JOBS and not self.state_url:
            raise ValueError(
                f"DBT_RUNNER_JOB={self.job.value} needs DBT_RUNNER_STATE_URL (s3://bucket/prefix "
                "or file:///path): where the last good run's state is kept"
            )
        if self.job in STATE_JOBS and self.selector:
            raise ValueError(
                f"DBT_RUNNER_SELECTOR cannot be combined with DBT_RUNNER_JOB={self.job.value}; "
                "use DBT_RUNNER_SLIM__SELECT and DBT_RUNNER_SELECT / DBT_RUNNER_EXCLUDE"
            )
        if self.selector and (self.select or self.exclude):
            raise ValueError(
                "DBT_RUNNER_SELECTOR cannot be combined with DBT_RUNNER_SELECT or "
                "DBT_RUNNER_EXCLUDE; put the selection in the selector"
            )
        return self

    # --- derived values: each defined once, here -----------------------------------

    @property
    def job_phases(self) -> list[Phase]:
        """The phases this run executes: the explicit list, else the job's preset."""
        return list(self.phases) if self.phases else list(JOB_PHASES[self.job])

    @property
    def run_dir(self) -> Path:
        """This run's scratch folder: rendered profile, dbt's target and logs, secrets."""
        return self.work_dir / "runs" / self.run_id

    @property
    def report_folder(self) -> Path:
        """Where report.json, summary.md and junit.xml are written locally: the setting,
        else the artifacts folder, else (artifacts on S3) the work folder's."""
        if self.report_dir is not None:
            return self.report_dir
        return local_folder(self.artifacts_url) or self.work_dir / "report"

    @property
    def defer_env(self) -> str:
        """The environment whose state a slim job compares with and defers to."""
        return self.slim.defer_env or self.env

    @property
    def selects_whole_project(self) -> bool:
        """Whether the job's node selection is the whole project: nothing narrowed by a
        selector, an exclusion or (outside slim jobs, where it adds) a selection."""
        narrowed = self.selector or self.exclude or (self.select and self.job not in STATE_JOBS)
        return not narrowed

    @property
    def compiles_whole_project(self) -> bool:
        """Whether a successful build of this job compiles every node of the project."""
        return (
            Phase.BUILD in self.job_phases
            and self.selects_whole_project
            and self.job not in STATE_JOBS
        )

    def not_promotable(self) -> str | None:
        """Why a successful run of this job must not become the state, if it must not:
        the state claims the warehouse holds every node's code as built."""
        if not BUILDING_PHASES & set(self.job_phases):
            return "the job has no build or run phase"
        if self.pr is not None:
            return "a pull-request run: its relations live in the pull request's schemas"
        if self.selector or self.exclude:
            return "the job built a selection (DBT_RUNNER_SELECTOR / DBT_RUNNER_EXCLUDE)"
        if not self.selects_whole_project:
            return "the job built a selection (DBT_RUNNER_SELECT)"
        return None

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, secrets masked."""
        return self.model_dump(mode="json", by_alias=True)


class NotifyOnly(BaseSettings):
    """Just the notification settings, for telling the channels that the rest of the
    settings did not validate."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="ignore"
    )
    notify: NotifySettings = Field(default_factory=NotifySettings)


# --- turning validation problems into one line ------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def known_env_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every DBT_RUNNER_* variable name the model accepts (nested with __)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        key = (field.alias or name).upper()
        names.add(prefix + key)
        nested = _nested_model(field.annotation)
        if nested is not None:
            names |= known_env_names(nested, prefix + key + NESTED_DELIMITER)
    return names


def _dict_fields(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Names of dict-valued settings, whose keys may continue after `__`."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name).upper()
        nested = _nested_model(field.annotation)
        if nested is not None:
            found |= _dict_fields(nested, key + NESTED_DELIMITER)
        elif "dict" in str(field.annotation):
            found.add(key + NESTED_DELIMITER)
    return found


def unknown_env_names(environ: dict[str, str] | None = None) -> list[str]:
    """DBT_RUNNER_* variables that match no setting: almost always a typo."""
    environ = dict(os.environ) if environ is None else environ
    known = known_env_names()
    open_prefixes = tuple(_dict_fields())
    return sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(open_prefixes)
    )


SECRET_FIELDS = {"password", "slack_webhook_url", "webhook_url", "webhook_secret", "url"}


def describe_error(error: ValidationError, cli_flags: dict[str, str]) -> str:
    """The first validation problem as one line naming the variable or flag, and the
    names of any others, so one run shows everything to fix."""
    problems = error.errors()
    line = _describe(problems[0], cli_flags)
    others = [_setting_name(problem["loc"], cli_flags) for problem in problems[1:]]
    others = [name for name in dict.fromkeys(others) if name and name not in line]
    if others:
        line += f" (also invalid: {', '.join(others)})"
    return line


def _setting_name(loc: tuple[int | str, ...], cli_flags: dict[str, str]) -> str:
    parts = [str(part) for part in loc]
    if not parts:
        return ""
    flag = cli_flags.get(parts[0]) if len(parts) == 1 else None
    return flag or ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in parts)


def _describe(first: Any, cli_flags: dict[str, str]) -> str:
    loc = [str(part) for part in first["loc"]]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not loc:
        # A model-level rule: its message already names the variables.
        return message
    name = _setting_name(first["loc"], cli_flags)
    raw = first.get("input")
    if loc[-1] in SECRET_FIELDS or isinstance(raw, (dict, BaseModel)):
        shown = ""
    elif isinstance(raw, list):
        shown = "=" + repr(",".join(map(str, raw)))
    else:
        shown = "=" + repr(str(raw)) if raw is not None else ""
    if first["type"] == "extra_forbidden":
        return f"{name} is not a known setting; remove it or check its spelling"
    return f"{name}{shown}: {message[0].lower()}{message[1:]}"


def load_settings(
    overrides: dict[str, Any] | None = None, cli_flags: dict[str, str] | None = None
) -> Settings:
    """Build Settings from the environment and CLI overrides, or raise ConfigError."""
    overrides = overrides or {}
    unknown = unknown_env_names()
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name.upper(), sorted(known_env_names()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{name} is not a known setting{hint}; remove it or fix its name")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, cli_flags or {})) from None


def load_notify_settings() -> NotifySettings | None:
    """The notification settings alone, None when they do not validate either."""
    try:
        return NotifyOnly().notify
    except ValidationError:
        return None
