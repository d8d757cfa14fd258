"""RunReport: one object describing a run: phases, node results, dbt's own errors,
timings, state, links and notifications. Written as `report.json` (schema:
docs/report.schema.json); its other renderings are in report_files.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from dbt_runner.errors import ExitCode
from dbt_runner.workspace.target import Target

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
        description="Nodes built again besides the changes: runs since the state, which were "
        "not promoted, had rebuilt them",
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


class RunReport(BaseModel):
    """Everything about one run. Written as report.json."""

    schema_version: int = SCHEMA_VERSION
    runner_version: str
    dbt_version: str | None = None
    adapter: str | None = None
    target: Target | None = Field(
        default=None,
        description="Where the run's relations go, as dbt resolves the profile (no secret)",
    )
    project: str | None = None
    env: str
    job: str
    run_id: str
    stopped_by: int | None = Field(
        default=None, description="The exit code of the signal or timeout that stopped the run"
    )
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="Seconds per stage: preflight, project, credentials, profile, state, "
        "dbt (phases), publish, report, notify",
    )
    builds_whole_project: bool = Field(
        default=False,
        description="The job selected the whole project (a slim job: every change): its "
        "success may set the state",
    )
    phases: list[PhaseResult] = Field(default_factory=list)
    nodes: list[NodeResult] = Field(default_factory=list)
    errors: list[RunError] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    skipped: str | None = Field(
        default=None,
        description="Why the run did nothing: another run holds its env's lease "
        "(DBT_RUNNER_CONCURRENCY=skip)",
    )
    state: StateInfo | None = None
    retry_of: str | None = Field(default=None, description="The run a retry re-ran")
    pr: PullRequestInfo | None = Field(default=None, description="A pull-request run's namespace")
    lint: LintInfo | None = Field(default=None, description="SQL lint findings (the lint phase)")
    fresh: FreshInfo | None = Field(default=None, description="A fresh job's source changes")
    history: HistoryInfo | None = Field(
        default=None, description="Regressions and flaky tests, from the run history"
    )
    lineage: LineageInfo | None = Field(default=None, description="OpenLineage events sent")
    credentials: list[str] = Field(
        default_factory=list,
        description="Which connection fields came from which source (no values)",
    )
    links: Links = Field(default_factory=Links)
    artifacts: list[str] = Field(default_factory=list, description="Files published for this run")
    notifications: list[Notification] = Field(
        default_factory=list, description="Every notification sent, and whether it arrived"
    )

    @model_validator(mode="before")
    @classmethod
    def _stopped_in_earlier_reports(cls, data: Any) -> Any:
        """Reports written before `stopped_by` say a stop only by their status."""
        earlier = isinstance(data, dict) and data.get("stopped_by") is None
        if earlier and data.get("status") in ("interrupted", "timed_out"):
            data = {**data, "stopped_by": data.get("exit_code")}
        return data

    # --- derived: the verdict and the duration, as the report stands --------------

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> RunStatus:
        return self._outcome(self.stopped_by)[1]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def exit_code(self) -> int:
        return int(self._outcome(self.stopped_by)[0])

    @computed_field(description="The whole run: publishing included")  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float:
        end = self.finished_at or now()
        return round((end - self.started_at).total_seconds(), 3)

    # --- building ------------------------------------------------------------

    def add_error(
        self, stage: str, message: str, exit_code: ExitCode, detail: str | None = None
    ) -> None:
        self.errors.append(
            RunError(stage=stage, message=message, exit_code=int(exit_code), detail=detail)
        )

    def finish(self, stopped_by: int | None = None) -> None:
        """Stamp the end (once, after every step that can add an error, before the last
        write). `stopped_by`: the exit code of a signal or the timeout that stopped it."""
        self.stopped_by = stopped_by if stopped_by is not None else self.stopped_by
        self.finished_at = now()

    def _outcome(self, stopped_by: int | None) -> tuple[int, RunStatus]:
        # The most telling cause wins: stopped (timeout, signal), config,
        # infrastructure, dbt error, failed nodes (README, "Exit codes").
        if stopped_by is not None:
            return stopped_by, STOPPED[stopped_by]
        codes = {error.exit_code for error in self.errors}
        strict = [phase for phase in self.phases if not phase.advisory]
        if ExitCode.CONFIG in codes:
            return ExitCode.CONFIG, "config_error"
        if ExitCode.INFRA in codes:
            return ExitCode.INFRA, "infra_error"
        if ExitCode.DBT_ERROR in codes or any(p.status == "error" for p in strict):
            return ExitCode.DBT_ERROR, "error"
        if any(p.status == "failed" for p in strict):
            return ExitCode.DBT_FAILURES, "failed"
        if self.skipped is not None:
            return ExitCode.SUCCESS, "skipped"
        return ExitCode.SUCCESS, "success"

    # --- reading -------------------------------------------------------------

    def succeeding(self) -> bool:
        """Whether the run, as recorded so far, would exit 0."""
        return self._outcome(None)[0] == ExitCode.SUCCESS

    def counts(self) -> dict[str, int]:
        totals = {"ok": 0, "warn": 0, "failed": 0, "skipped": 0}
        for node in self.nodes:
            totals[node.outcome] += 1
        return totals

    def failures(self) -> list[NodeResult]:
        return [node for node in self.nodes if node.outcome == "failed"]

    def first_error(self) -> str | None:
        """The first thing that went wrong, in words: a stage's error or a failed node's."""
        if self.errors:
            return self.errors[0].message
        failed = self.failures()
        if failed:
            return f"{failed[0].unique_id}: {failed[0].message or failed[0].status}"
        return None

    def headline(self) -> str:
        return f"dbt-runner {self.project or '?'}/{self.env} {self.job}: {self.status}"


# --- renderings ----------------------------------------------------------------

STATUS_ICONS = {
    "success": "✅",
    "failed": "❌",
    "error": "💥",
    "config_error": "⚙️",
    "infra_error": "🔌",
    "interrupted": "⏹️",
    "timed_out": "⏱️",
    "skipped": "⏭️",
}


def report_schema() -> str:
    """The JSON schema of report.json, as committed in docs/report.schema.json."""
    schema = RunReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
