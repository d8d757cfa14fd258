"""The nested groups of settings (`DBT_RUNNER_<GROUP>__<NAME>`): the warehouse of a
rendered profile, credentials, notifications, slim and fresh jobs, lineage, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from dbt_runner.config.kinds import Adapter, Policy
from dbt_runner.config.values import (
    http_url,
    interval,
    json_object,
    secret_http_url,
    setting,
    split_list,
)


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
        return json_object(value, '{"keepalives_idle": 30}')


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
        None,
        "provisioned Redshift cluster: a rendered profile logs in with dbt-redshift's IAM "
        "method (GetClusterCredentials for each connection opened after the last expired)",
    )
    redshift_workgroup: str | None = setting(
        None,
        "Redshift Serverless workgroup: a rendered profile logs in with dbt-redshift's "
        "`iam_role` method (GetCredentials as the task's role)",
    )
    redshift_db_user: str | None = setting(
        None, "database user to log in as on the cluster (required with a cluster id)"
    )
    redshift_auto_create: bool = setting(
        False, "let GetClusterCredentials create the database user"
    )
    redshift_duration_s: int = setting(
        900,
        "lifetime of the temporary password fetched for a project's own profiles.yml "
        "(again before each dbt command), seconds: a connection a command opens after it "
        "fails (use `method: iam` there)",
        ge=900,
        le=3600,
    )

    @field_validator("ssm_parameters", mode="before")
    @classmethod
    def _parse_parameters(cls, value: Any) -> Any:
        return json_object(value, '{"password": "/dbt/prod/password"}')

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


class Trigger(BaseModel):
    """A URL called after a successful run (a BI tool's sync, an Airflow DAG run).

    Header values are literal, `env:NAME` (read from a variable) or
    `secret:SECRET_ID` / `secret:SECRET_ID#key` (read from Secrets Manager)."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None

    _http = field_validator("url")(secret_http_url)


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

    _http = field_validator("slack_webhook_url", "webhook_url")(secret_http_url)

    @field_validator("owners", mode="before")
    @classmethod
    def _parse_owners(cls, value: Any) -> Any:
        return json_object(value, '{"finance": "https://hooks.slack.com/services/..."}')

    @field_validator("owners")
    @classmethod
    def _owner_urls(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for url in value.values():
            secret_http_url(url)
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
            return [{"url": url} for url in split_list(text)]
        return value


class SlimSettings(BaseModel):
    """How a slim job selects and defers (DBT_RUNNER_JOB=slim)."""

    model_config = ConfigDict(extra="forbid")

    select: str = setting(
        "state:modified+",
        "what a slim job builds: `state:modified`, `state:modified+1`, ...; "
        "DBT_RUNNER_SELECT adds to it, DBT_RUNNER_EXCLUDE removes",
    )
    children: Literal["affected", "all"] = setting(
        "affected",
        "which descendants of a change to build: `affected`, those a change can reach (its "
        "compiled SQL against the state's, column by column; unsure: built); `all`, every "
        "one (`state:modified+`). Slim, fresh and pull-request jobs",
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
