"""Settings: the whole job as one validated pydantic-settings model.

Every setting is an environment variable `DBT_RUNNER_<NAME>` (nested groups with
`__`, e.g. `DBT_RUNNER_WAREHOUSE__TYPE`) and, for the everyday ones, a CLI flag that
overrides it. Validation happens before anything runs; a problem becomes one
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

from entrypoint.errors import ConfigError
from entrypoint.storage import normalise_url

ENV_PREFIX = "DBT_RUNNER_"
NESTED_DELIMITER = "__"


class Job(StrEnum):
    FULL = "full"
    SLIM = "slim"
    CUSTOM = "custom"


class Phase(StrEnum):
    """dbt phases, declared in the order a job runs them."""

    DEPS = "deps"
    DEBUG = "debug"
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
}


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Adapter(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    REDSHIFT = "redshift"
    BIGQUERY = "bigquery"


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


class WarehouseSettings(BaseModel):
    """Connection fields used when the runner renders profiles.yml for an adapter.

    Ignored when the project (or DBT_RUNNER_PROFILES_DIR) has its own profiles.yml.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Adapter = Adapter.DUCKDB
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    database: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    # duckdb: the database file; relative paths are taken from the working directory.
    path: str | None = None
    # postgres / redshift
    sslmode: str | None = None
    # bigquery
    project: str | None = None
    location: str | None = None
    method: str | None = None
    keyfile: Path | None = None
    # Any further adapter fields, merged into the rendered output (JSON object).
    extra: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)

    @field_validator("extra", mode="before")
    @classmethod
    def _parse_extra(cls, value: Any) -> Any:
        return _json_object(value, '{"keepalives_idle": 30}')


class AwsSettings(BaseModel):
    """Timeouts for AWS calls. Retries are botocore's own: AWS_RETRY_MODE and
    AWS_MAX_ATTEMPTS (default here: standard mode, 4 attempts)."""

    model_config = ConfigDict(extra="forbid")

    connect_timeout_s: float = Field(default=5, gt=0, le=300)
    read_timeout_s: float = Field(default=60, gt=0, le=900)


class CredentialsSettings(BaseModel):
    """Where connection fields come from at run time. Every source that is set is
    used, in this order, a later one overriding an earlier: Glue connection, Secrets
    Manager secret, SSM parameters, Redshift IAM."""

    model_config = ConfigDict(extra="forbid")

    glue_connection: str | None = None
    secret_id: str | None = None
    ssm_path: str | None = None
    ssm_parameters: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    redshift_cluster_id: str | None = None
    redshift_workgroup: str | None = None
    redshift_db_user: str | None = None
    redshift_auto_create: bool = False
    redshift_duration_s: int = Field(default=900, ge=900, le=3600)

    @field_validator("ssm_parameters", mode="before")
    @classmethod
    def _parse_parameters(cls, value: Any) -> Any:
        return _json_object(value, '{"password": "/dbt/prod/password"}')

    @model_validator(mode="after")
    def _consistent(self) -> CredentialsSettings:
        if self.redshift_cluster_id and self.redshift_workgroup:
            raise ValueError(
                "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID and __REDSHIFT_WORKGROUP are "
                "exclusive: one is a provisioned cluster, the other Redshift Serverless"
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

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("a trigger URL must start with http:// or https://")
        return value


class NotifySettings(BaseModel):
    """Notifications for every run, configured by environment."""

    model_config = ConfigDict(extra="forbid")

    slack_webhook_url: SecretStr | None = None
    slack_policy: Policy = Policy.ALWAYS
    webhook_url: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    webhook_policy: Policy = Policy.ALWAYS
    triggers: Annotated[list[Trigger], NoDecode] = Field(default_factory=list)
    timeout_s: float = Field(default=10, gt=0, le=120)
    retries: int = Field(default=2, ge=0, le=5)
    max_failures: int = Field(default=10, ge=1, le=100)

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

    @field_validator("slack_webhook_url", "webhook_url")
    @classmethod
    def _http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
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


class SlimSettings(BaseModel):
    """How a slim job selects and defers (DBT_RUNNER_JOB=slim)."""

    model_config = ConfigDict(extra="forbid")

    # What changed since the state: `state:modified+` (and children), `state:modified`,
    # `state:modified+1`, ... DBT_RUNNER_SELECT adds to it, DBT_RUNNER_EXCLUDE removes.
    select: str = "state:modified+"
    defer: bool = True
    favor_state: bool = False
    # Defer to another environment's state (a CI job deferring to prod); default: own.
    defer_env: str | None = None


class Settings(BaseSettings):
    """The job: read from DBT_RUNNER_* variables, overridden by CLI flags."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    project_dir: Path = Path()
    profiles_dir: Path | None = None
    target: str | None = None
    env: str = "dev"
    job: Job = Job.FULL
    phases: PhaseList | None = None
    advisory_phases: PhaseList = Field(default_factory=lambda: [Phase.FRESHNESS, Phase.DOCS])
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    threads: int | None = Field(default=None, ge=1, le=256)
    vars: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    full_refresh: bool = False
    fail_fast: bool = False
    artifacts_url: str = "out"
    # An http(s) address serving the artifacts URL (CloudFront, an S3 website): links in
    # reports and notifications use it instead of s3:// or file:// URLs.
    artifacts_public_url: str | None = None
    report_dir: Path | None = None
    work_dir: Path = Path(tempfile.gettempdir()) / "dbt-runner"
    log_format: LogFormat = LogFormat.TEXT
    run_id: str = Field(default_factory=new_run_id)
    # Where the state of the last good run lives: s3://bucket/prefix or file:///path.
    state_url: str | None = None
    slim: SlimSettings = Field(default_factory=SlimSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
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
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                "must start with http:// or https:// (e.g. https://docs.example.com/dbt)"
            )
        return value.rstrip("/") if value else value

    @field_validator("work_dir", "report_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.job is Job.CUSTOM and not self.phases:
            raise ValueError(
                "DBT_RUNNER_JOB=custom needs DBT_RUNNER_PHASES (e.g. 'deps,seed,build')"
            )
        if self.job is Job.SLIM and not self.state_url:
            raise ValueError(
                "DBT_RUNNER_JOB=slim needs DBT_RUNNER_STATE_URL (s3://bucket/prefix or "
                "file:///path): where the last good run's state is kept"
            )
        if self.job is Job.SLIM and self.selector:
            raise ValueError(
                "DBT_RUNNER_SELECTOR cannot be combined with DBT_RUNNER_JOB=slim; "
                "use DBT_RUNNER_SLIM__SELECT and DBT_RUNNER_SELECT / DBT_RUNNER_EXCLUDE"
            )
        if self.selector and (self.select or self.exclude):
            raise ValueError(
                "DBT_RUNNER_SELECTOR cannot be combined with DBT_RUNNER_SELECT or "
                "DBT_RUNNER_EXCLUDE; put the selection in the selector"
            )
        return self

    @property
    def job_phases(self) -> list[Phase]:
        """The phases this run executes: the explicit list, else the job's preset."""
        return list(self.phases) if self.phases else list(JOB_PHASES[self.job])

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, secrets masked."""
        return self.model_dump(mode="json", by_alias=True)


# --- turning validation problems into one line ------------------------------------


def known_env_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every DBT_RUNNER_* variable name the model accepts (nested with __)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        key = (field.alias or name).upper()
        names.add(prefix + key)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= known_env_names(annotation, prefix + key + NESTED_DELIMITER)
    return names


def _dict_fields(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Names of dict-valued settings, whose keys may continue after `__`."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name).upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= _dict_fields(annotation, key + NESTED_DELIMITER)
        elif "dict" in str(annotation):
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
