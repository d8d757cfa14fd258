"""GitHub Actions: the summary appended to the job's step summary, and the lint findings
as annotations on the pull request's files."""

from __future__ import annotations

import os
from pathlib import Path

from dbt_runner.report.markdown import to_markdown
from dbt_runner.report.model import LintInfo, RunReport


def append_step_summary(report: RunReport) -> None:
    """Add the summary to a GitHub Actions job page, when running in one."""
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with Path(step_summary).open("a", encoding="utf-8") as handle:
            handle.write(to_markdown(report) + "\n")


def github_annotations(info: LintInfo) -> list[str]:
    """GitHub Actions annotations, one per finding, with paths from the repository root."""
    return [
        f"::warning file={info.prefix}{finding.file},line={finding.line},col={finding.column},"
        f"title=SQLFluff {finding.rule}::{finding.message}"
        for finding in info.findings
    ]
