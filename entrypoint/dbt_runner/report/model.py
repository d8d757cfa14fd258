"""RunReport: one object describing a run: phases, node results, dbt's own errors,
timings, state, links and notifications. Written as `report.json` (schema:
docs/report.schema.json); its other renderings are in report_files.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, computed_field, model_validator

from dbt_runner.errors import ExitCode
from dbt_runner.report.impact import ImpactInfo
from dbt_runner.report.parts import (
    SCHEMA_VERSION,
    STOPPED,
    Flaky,
    FreshInfo,
    HistoryInfo,
    Inputs,
    LineageInfo,
    Links,
    LintFinding,
    LintInfo,
    NodeResult,
    Notification,
    Outcome,
    PhaseResult,
    PhaseStatus,
    PreparedInfo,
    PullRequestInfo,
    Regression,
    RunError,
    RunStatus,
    StateInfo,
    Target,
    now,
    outcome_of,
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
    path_prefix: str = Field(
        default="",
        description="The project folder relative to the repository (GITHUB_WORKSPACE), "
        "before every node's and linted file's path in junit.xml and annotations",
    )
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
    prepared: PreparedInfo | None = Field(
        default=None, description="What `dbt-runner prepare` baked, and what this run used"
    )
    retry_of: str | None = Field(default=None, description="The run a retry re-ran")
    inputs: Inputs | None = Field(
        default=None,
        description=(
            "Digests (never values) of the dbt vars and the environment variables the "
            "parse read, as what this run built was built with; a retry completes a run "
            "only with the same (none: not known)"
        ),
    )
    pr: PullRequestInfo | None = Field(default=None, description="A pull-request run's namespace")
    impact: ImpactInfo | None = Field(
        default=None, description="What a pull-request run did to the data, against production"
    )
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
    finishing: list[str] = Field(
        default_factory=list,
        description="Steps still to come when this copy was written (lineage, the pull "
        "request's comment, notifications): empty in the final copy; a copy that names them "
        "was left by a process killed while doing them (docker's stop grace, exit 137)",
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

    @computed_field(  # type: ignore[prop-decorator]
        description="From the process's start until the run's verdict was final (state, "
        "artifacts, history and metrics included); lineage, the pull request's comment "
        "and notifications come after it (their seconds are in timings)"
    )
    @property
    def duration_s(self) -> float:
        end = self.finished_at or now()
        return round((end - self.started_at).total_seconds(), 3)

    # --- building ------------------------------------------------------------

    def add_error(
        self, stage: str, message: str, exit_code: ExitCode, detail: str | None = None
    ) -> None:
        """`stage`: where; `message`: one line; `exit_code`: what it makes of the run's;
        `detail`: a traceback, for a bug report."""
        self.errors.append(
            RunError(stage=stage, message=message, exit_code=int(exit_code), detail=detail)
        )

    def finish(self) -> None:
        """Stamp the end (once, after every step that can add an error, before the
        notifications; the run sets `stopped_by` as soon as it knows of a stop, so every
        rendering says it)."""
        self.finished_at = now()

    def _outcome(self, stopped_by: int | None) -> tuple[int, RunStatus]:
        # The most telling cause wins: stopped (timeout, signal), config,
        # infrastructure, dbt error, failed nodes (docs/faults.md, "Exit codes").
        if stopped_by is not None:
            return stopped_by, STOPPED[stopped_by]
        codes = {error.exit_code for error in self.errors}
        strict = [phase.status for phase in self.phases if not phase.advisory]
        causes: list[tuple[bool, tuple[int, RunStatus]]] = [
            (ExitCode.CONFIG in codes, (ExitCode.CONFIG, "config_error")),
            (ExitCode.INFRA in codes, (ExitCode.INFRA, "infra_error")),
            (ExitCode.DBT_ERROR in codes or "error" in strict, (ExitCode.DBT_ERROR, "error")),
            ("failed" in strict, (ExitCode.DBT_FAILURES, "failed")),
            (self.skipped is not None, (ExitCode.SUCCESS, "skipped")),
        ]
        return next((found for cause, found in causes if cause), (ExitCode.SUCCESS, "success"))

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


__all__ = [
    "SCHEMA_VERSION",
    "STATUS_ICONS",
    "STOPPED",
    "Flaky",
    "FreshInfo",
    "HistoryInfo",
    "LineageInfo",
    "Links",
    "LintFinding",
    "LintInfo",
    "NodeResult",
    "Notification",
    "Outcome",
    "PhaseResult",
    "PhaseStatus",
    "PreparedInfo",
    "PullRequestInfo",
    "Regression",
    "RunError",
    "RunReport",
    "RunStatus",
    "StateInfo",
    "now",
    "outcome_of",
    "report_schema",
]
