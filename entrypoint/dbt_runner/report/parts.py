"""The parts of a run's report: node and phase results, errors, and what each stage of
the data path found (state, lint, fresh, history, lineage, a pull request's schemas)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from dbt_runner.errors import ExitCode

SCHEMA_VERSION = 1

Outcome = Literal["ok", "warn", "failed", "skipped"]
PhaseStatus = Literal["success", "failed", "error", "skipped", "interrupted"]
RunStatus = Literal[
    "success",
    "failed",
    "error",
    "config_error",
    "infra_error",
    "interrupted",
    "timed_out",
    "skipped",
]
# The exit codes of a run stopped from outside, and the status each gives.
STOPPED: dict[int, RunStatus] = {
    ExitCode.TIMEOUT: "timed_out",
    ExitCode.SIGINT: "interrupted",
    ExitCode.SIGTERM: "interrupted",
}

# dbt's node statuses (run, test and freshness results), by what they mean for the job.
_OUTCOMES: dict[str, Outcome] = {
    "success": "ok",
    "pass": "ok",
    "no-op": "ok",
    "partial success": "warn",
    "warn": "warn",
    "error": "failed",
    "fail": "failed",
    "runtime error": "failed",
    "skipped": "skipped",
}


def outcome_of(status: str) -> Outcome:
    return _OUTCOMES.get(status, "failed")


def now() -> datetime:
    return datetime.now(UTC)


MEMORY = ":memory:"


class Target(BaseModel):
    """Where a run's relations live."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, frozen=True)

    adapter: str
    location: str = Field(
        description="host:port, the DuckDB file's absolute path, the BigQuery project"
    )
    database: str | None = None
    schema_: str | None = Field(default=None, alias="schema")

    def describe(self) -> str:
        parts = [self.adapter, self.location]
        if self.database:
            parts.append(f"database {self.database}")
        if self.schema_:
            parts.append(f"schema {self.schema_}")
        return " ".join(parts)

    def differences(self, other: Target) -> list[str]:
        """What differs from `other`, as `field a -> b`."""
        mine, theirs = self.model_dump(by_alias=True), other.model_dump(by_alias=True)
        return [
            f"{name} {theirs[name]} -> {mine[name]}" for name in mine if mine[name] != theirs[name]
        ]

    def duckdb_file(self) -> Path | None:
        """The local DuckDB file, None for other adapters and remote databases."""
        if self.adapter != "duckdb" or self.location == MEMORY or has_scheme(self.location):
            return None
        return Path(self.location)


def has_scheme(path: str) -> bool:
    """md:, s3://, ducklake: ... (one letter would be a Windows drive)."""
    scheme = urlparse(path).scheme
    return len(scheme) > 1


class Inputs(BaseModel):
    """The digests of what a parse read besides the project's files."""

    vars: str  # the run's dbt vars (DBT_RUNNER_VARS) and dbt_project.yml's `vars:`
    env_vars: dict[str, str | None]  # name -> digest of its value, None when unset


class NodeResult(BaseModel):
    """One node dbt executed (or skipped) in a phase."""

    unique_id: str
    name: str
    resource_type: str
    phase: str
    status: str = Field(description="dbt's own status: success, pass, fail, error, skipped, ...")
    outcome: Outcome
    execution_time_s: float = 0.0
    message: str | None = None
    failures: int | None = Field(default=None, description="Failing rows, for tests")
    relation: str | None = None
    path: str | None = Field(default=None, description="The node's file in the project")
    started_at: datetime | None = Field(default=None, description="When dbt started the node")
    finished_at: datetime | None = Field(default=None, description="When it finished")
    thread: str | None = Field(default=None, description="dbt's worker thread")
    owner: str | None = Field(
        default=None, description="meta.owner, else the dbt group's owner (a test: its model's)"
    )
    rows_affected: int | None = Field(default=None, description="As the adapter reports it")
    bytes_processed: int | None = Field(default=None, description="BigQuery: bytes processed")
    bytes_billed: int | None = Field(default=None, description="BigQuery: bytes billed")
    compiled_sql: str | None = Field(
        default=None, description="A failed node's compiled SQL, as dbt ran (or tried) it"
    )
    detail: str | None = Field(
        default=None,
        description="dbt's message with its line breaks, when it has several lines (a unit "
        "test's expected-against-actual table, one row per line)",
    )

    def failing_rows(self) -> str | None:
        """Where a failed test's failing rows are stored (`store_failures`), if they are:
        the query that shows them, as plain `dbt build` prints it."""
        if self.resource_type == "test" and self.outcome == "failed" and self.relation:
            return f"select * from {self.relation}"  # noqa: S608 (words for a reader)
        return None

    def failure_text(self) -> str:
        """What a failed node says in full: dbt's words, row by row where it gave rows
        (a unit test's table), and where a test's failing rows are."""
        text = self.detail or self.message or self.status
        rows = self.failing_rows()
        return text + (f"\nSee test failures: {rows}" if rows else "")


class PhaseResult(BaseModel):
    name: str
    status: PhaseStatus
    advisory: bool = Field(
        default=False, description="A failure here is reported but does not fail the job"
    )
    started_at: datetime | None = None
    duration_s: float = 0.0
    dbt_args: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(
        default_factory=dict, description="Nodes by outcome: ok, warn, failed, skipped"
    )
    message: str | None = None
    results_complete: bool = Field(
        default=True,
        description="False when a stop left nodes whose fate is unknown (a retry refuses)",
    )


class RunError(BaseModel):
    stage: str = Field(
        description="settings, preflight, project, credentials, profile, state, a phase, "
        "publish, report, notify"
    )
    message: str = Field(description="One line: what broke and the fix; dbt's own error")
    exit_code: int
    detail: str | None = Field(
        default=None, description="The traceback of an unexpected error, for a bug report"
    )


class Notification(BaseModel):
    channel: str = Field(description="slack, webhook, trigger N")
    url: str = Field(description="Scheme, host, port and path: no query or credentials")
    ok: bool
    error: str | None = None


class Links(BaseModel):
    run_url: str | None = Field(default=None, description="This run's artifacts and reports")
    docs_url: str | None = Field(default=None, description="The latest docs site")
    report_url: str | None = Field(default=None, description="This run's page, report.html")


class Horizon(BaseModel):
    """What a state covers of its target's write log (state/writes.py)."""

    seq: int = Field(description="The last write its run had read when it looked the log up")
    open: list[int] = Field(
        default_factory=list, description="Writes still open then, by live runs: not covered"
    )
    covers: list[str] = Field(
        default_factory=list, description="Runs whose writes it covers, whenever they came"
    )


class ChildDecision(BaseModel):
    """A change, or a descendant of one, and whether the slim job built it."""

    node: str = Field(description="Its unique id")
    decision: Literal["build", "skip"] = Field(description="Built by this job, or left as it is")
    kind: Literal["equivalent", "additive", "columns", "whole", "unreached", "ephemeral"] = Field(
        description="What the change does to it: nothing (equivalent, unreached), new columns "
        "(additive), some columns' values (columns), possibly every row (whole); an "
        "ephemeral model is read through"
    )
    reason: str = Field(description="Why, in words")
    columns: list[str] = Field(default_factory=list, description="Its columns a change reaches")
    changed: bool = Field(default=False, description="Changed itself (dbt's state:modified)")


class ReachInfo(BaseModel):
    """How a slim job chose the descendants of its changes (DBT_RUNNER_SLIM__CHILDREN)."""

    mode: Literal["affected", "all"] = Field(
        description="affected: only the descendants a change can reach; all: state:modified+"
    )
    reason: str | None = Field(default=None, description="Why every descendant was selected")
    built: int = Field(default=0, description="Descendants (not changed themselves) built")
    skipped: int = Field(default=0, description="Descendants left as they are")
    seconds: float = Field(default=0.0, description="The decision, dbt's listing and compile in")
    analysis_s: float = Field(default=0.0, description="Of which reading the SQL and deciding")

    def headline(self) -> str:
        """One line: how many descendants of the changes were built, and why not all."""
        if self.mode == "all":
            return f"every descendant of the changes built ({self.reason or 'asked for'})"
        total = self.built + self.skipped
        return (
            f"{self.built} of {total} descendant(s) of the changes built; {self.skipped} left "
            "as they are (no change reaches their data)"
        )


class StateInfo(BaseModel):
    """Slim jobs and state: what was compared, deferred and promoted."""

    url: str = Field(description="Where this job's state is read from")
    mode: Literal["slim", "full"] = Field(description="How the build selected: changes, or all")
    reason: str | None = Field(default=None, description="Why a slim job built everything")
    deferred_to: str | None = Field(default=None, description="Run id of the state used")
    warm_parse: bool = Field(default=False, description="dbt's parse cache came with the state")
    promoted: bool = Field(default=False, description="This run's state is now the latest")
    selected: list[str] = Field(default_factory=list, description="Nodes the build selected")
    built: list[str] = Field(default_factory=list, description="Selected nodes that ran")
    skipped: list[str] = Field(default_factory=list, description="Selected nodes skipped")
    deferred: list[str] = Field(
        default_factory=list, description="Unselected parents read from the state's relations"
    )
    unsettled: list[str] = Field(
        default_factory=list,
        description="Nodes built again besides the changes: written into the target since "
        "the state by runs it does not cover (not promoted, another env's, `dbt-runner dbt`), "
        "or dropped with what they read",
    )
    seeds_changed: list[str] = Field(
        default_factory=list,
        description="Seeds over 1 MiB (dbt compares them by path only) whose file changed "
        "since the state: built with what reads them",
    )
    horizon: Horizon | None = Field(
        default=None, description="The writes into the target this run's state would cover"
    )
    missing: list[str] = Field(
        default_factory=list,
        description="Relations the state would name that the warehouse lacked when the run "
        "ended: not promoted, built by the next slim job",
    )
    dropped: list[str] = Field(
        default_factory=list,
        description="Views the warehouse dropped with relations this run rebuilt (PostgreSQL, "
        "Redshift) that the run did not build again",
    )
    reach: ReachInfo | None = Field(
        default=None, description="How the descendants of the changes were chosen"
    )
    children: list[ChildDecision] = Field(
        default_factory=list,
        description="Each change and each of its descendants: built or not, and why",
    )


class LintFinding(BaseModel):
    file: str = Field(description="Relative to the project folder")
    line: int
    column: int
    rule: str = Field(description="SQLFluff's rule code, e.g. LT01")
    name: str = Field(description="SQLFluff's rule name, e.g. layout.spacing")
    message: str


class LintInfo(BaseModel):
    """The lint phase: what was linted, with which config, and what it found."""

    files: list[str] = Field(default_factory=list)
    findings: list[LintFinding] = Field(default_factory=list)
    dialect: str
    config: str = Field(description="The project's own SQLFluff config, or dbt-runner's default")
    prefix: str = Field(
        default="",
        description="The project folder relative to the repository root (GITHUB_WORKSPACE), "
        "which SARIF and annotations put before each file",
    )


class FreshInfo(BaseModel):
    """A fresh job: which sources had new data, what was built and what was not."""

    new_data: list[str] = Field(default_factory=list, description="Sources with newer rows")
    assumed: dict[str, str] = Field(
        default_factory=dict, description="Sources counted as new, and why (cautious)"
    )
    too_soon: dict[str, str] = Field(
        default_factory=dict, description="Models left as they are under their build_after"
    )
    held_back: list[str] = Field(
        default_factory=list,
        description="Sources whose new data those models still owe: not marked as seen",
    )
    models_built: int = 0
    models_skipped: int = 0
    model_seconds_skipped: float = Field(
        default=0.0,
        description="The skipped models' build durations in their last builds, summed across "
        "threads: model-seconds of work not done, not wall time",
    )


class Regression(BaseModel):
    """A node markedly slower than its recent successful runs."""

    unique_id: str
    duration_s: float
    median_s: float = Field(description="The median of its last successful runs")
    runs: int = Field(description="How many runs that median is of")
    owner: str | None = None


class Flaky(BaseModel):
    """A test that failed in more than one recent run, and passed in another."""

    unique_id: str
    failed: int = Field(description="Runs it failed in, of `runs` (this one included)")
    runs: int
    owner: str | None = None


class HistoryInfo(BaseModel):
    """What the run history says about this run (DBT_RUNNER_HISTORY__*)."""

    url: str | None = Field(default=None, description="This run's history file")
    runs_compared: int = Field(default=0, description="Earlier runs read from the history")
    previous_run: str | None = Field(default=None, description="The latest earlier run's id")
    regressions: list[Regression] = Field(default_factory=list)
    flaky: list[Flaky] = Field(default_factory=list)


class LineageInfo(BaseModel):
    """OpenLineage events sent for this run (DBT_RUNNER_LINEAGE__URL)."""

    url: str = Field(description="The endpoint: scheme, host, port and path")
    events: int = Field(default=0, description="Events the endpoint accepted")
    error: str | None = Field(default=None, description="Why the rest were not sent")


class PullRequestInfo(BaseModel):
    """A pull-request run's namespace."""

    pr: str
    namespace: str = Field(description="The pull request's target schema; its own are under it")
    schemas: list[str] = Field(
        default_factory=list, description="The schemas this run's nodes write to"
    )
    comment_url: str | None = Field(
        default=None, description="The pull request's comment this run wrote or updated"
    )


class PreparedInfo(BaseModel):
    """What `dbt-runner prepare` baked into the image, and what this run used of it."""

    folder: str
    prepared_at: datetime | None = None
    parse: bool = Field(description="The baked parse cache started dbt's parse")
    packages: bool = Field(description="The packages installed at build time were used")
    reason: str | None = Field(default=None, description="Why the baked parse was not used")
