"""Settings: the whole job as one validated pydantic-settings model.

Every setting is an environment variable `DBT_RUNNER_<NAME>` (nested groups with
`__`, e.g. `DBT_RUNNER_WAREHOUSE__TYPE`) and, for the everyday ones, a CLI flag that
overrides it (declared on the field, with `flag=`). Every field carries its description:
docs/settings.md is generated from them (`make docs`). Validation happens before
anything runs; a problem becomes one `ConfigError` line naming the variable (or flag),
the bad value and what is accepted (load.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dbt_runner.aws import AwsSettings
from dbt_runner.config import checks
from dbt_runner.config.groups import (
    CredentialsSettings,
    FreshSettings,
    HistorySettings,
    LineageSettings,
    NotifySettings,
    SlimSettings,
    WarehouseSettings,
)
from dbt_runner.config.kinds import (
    JOB_PHASES,
    NODE_PHASES,
    STATE_JOBS,
    Concurrency,
    Job,
    LogFormat,
    MetricsMode,
    Phase,
    ProfileSource,
)
from dbt_runner.config.remote import RemoteSettings
from dbt_runner.config.review import GitHubSettings, ImpactSettings, impact_switch
from dbt_runner.config.values import ENV_PREFIX, NESTED_DELIMITER, PhaseList, new_run_id, setting
from dbt_runner.storage import local_folder


class JobSettings(BaseSettings):
    """What runs: the project, its profile and target, the job and its selection."""

    project_url: str | None = setting(
        None,
        "the project packed as `<sha256>.tar.gz` (s3:// or file://), as `dbt-runner remote` "
        "sends it: fetched into the work folder, its digest checked, and run in place of "
        "DBT_RUNNER_PROJECT_DIR",
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
        "freshness, docs`; always run in that order (a fresh job's freshness first)",
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

    _phases = field_validator("phases", "advisory_phases", mode="before")(checks.phases)
    _env = field_validator("env")(checks.env_name)
    _vars = field_validator("vars", mode="before")(checks.dbt_vars)
    _project_url = field_validator("project_url")(checks.project_archive_url)

    @field_validator("project_dir")
    @classmethod
    def _project(cls, value: Path, info: ValidationInfo) -> Path:
        """The folder must hold a project, unless the project comes from a URL (declared
        first, so it is known here)."""
        return value if info.data.get("project_url") else checks.project_folder(value)

    _profiles = field_validator("profiles_dir")(checks.profiles_folder)


class Settings(JobSettings):
    """The job (JobSettings), where it keeps what it makes, and how it reports: read from
    DBT_RUNNER_* variables, overridden by CLI flags."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
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
    prepared_dir: Path | None = setting(
        None,
        "where `dbt-runner prepare` keeps what it baked (the parse cache and its record) "
        "and where runs look for it",
        shown="`<project>/.dbt-runner`",
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
        "dbt-runner",
        "the CloudWatch namespace of the run's metrics: letters, digits and `.-_/#:`, not "
        "starting with `AWS/` (CloudWatch's rules)",
        min_length=1,
        max_length=255,
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
        "to slim, deferring to `prod`; lower-cased, '-' and '_' dropped, so no pull "
        "request's schemas start with another's, and a name that changes keeps a short "
        "digest of itself (`feature-2` and `Feature2` are two pull requests)",
        flag="--pr",
    )
    pr_schema: str = setting(
        "{schema}_pr_{pr}",
        "the schema of a pull request's relations: `{schema}` is the target's, `{pr}` the "
        "pull request; dbt's default generate_schema_name puts custom schemas under it",
    )
    pr_impact: Annotated[ImpactSettings, NoDecode] = Field(default_factory=ImpactSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    slim: SlimSettings = Field(default_factory=SlimSettings)
    fresh: FreshSettings = Field(default_factory=FreshSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)  # the caller's (remote)

    _run_id = field_validator("run_id")(checks.run_id)
    _metrics_namespace = field_validator("metrics_namespace")(checks.metrics_namespace)
    _pr = field_validator("pr")(checks.pull_request)
    _pr_schema = field_validator("pr_schema")(checks.pr_schema)
    _pr_impact = field_validator("pr_impact", mode="before")(impact_switch)
    _urls = field_validator("artifacts_url", "state_url")(checks.storage_url)
    _public = field_validator("artifacts_public_url")(checks.public_url)
    _absolute = field_validator("work_dir", "report_dir", "prepared_dir")(checks.absolute)
    _project_from_url = model_validator(mode="after")(checks.project_from_url)

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
        if self.job is Job.FRESH and self.phases and Phase.FRESHNESS not in self.phases:
            raise ValueError(
                "DBT_RUNNER_JOB=fresh selects what has new data: DBT_RUNNER_PHASES needs "
                "'freshness' (e.g. 'freshness,build')"
            )
        return self

    # --- derived values: each defined once, here -----------------------------------

    @property
    def job_phases(self) -> list[Phase]:
        """The phases this run executes: the explicit list, else the job's preset. A
        fresh job's freshness comes before its node phases: they select what it found."""
        phases = list(self.phases) if self.phases else list(JOB_PHASES[self.job])
        if self.job is Job.FRESH and Phase.FRESHNESS in phases:
            phases.remove(Phase.FRESHNESS)
            at = next((i for i, p in enumerate(phases) if p in NODE_PHASES), len(phases))
            phases.insert(at, Phase.FRESHNESS)
        return phases

    @property
    def run_dir(self) -> Path:
        """This run's scratch folder: rendered profile, dbt's target and logs, secrets."""
        return self.work_dir / "runs" / self.run_id

    @property
    def prepared_folder(self) -> Path:
        """Where `dbt-runner prepare` writes, and runs read, the baked parse."""
        return self.prepared_dir or self.project_dir.absolute() / ".dbt-runner"

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

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, secrets masked."""
        return self.model_dump(mode="json", by_alias=True)
