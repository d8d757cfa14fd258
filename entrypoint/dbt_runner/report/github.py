"""GitHub Actions: the summary appended to the job's step summary, and annotations on
the pull request's files: a lint finding each, and each failed model, seed, snapshot
or test at its file."""

from __future__ import annotations

import os
from pathlib import Path

from dbt_runner.report.markdown import to_markdown
from dbt_runner.report.model import LintInfo, NodeResult, RunReport

ANNOTATED = 50  # GitHub shows at most 50 annotations of a kind per step


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


def node_annotations(report: RunReport) -> list[str]:
    """An error annotation per failed node, at its file from the repository's root."""
    return [_node_annotation(report.path_prefix, node) for node in report.failures()[:ANNOTATED]]


def _node_annotation(prefix: str, node: NodeResult) -> str:
    where = f"file={_property(prefix + node.path)}," if node.path else ""
    title = _property(f"dbt {node.resource_type} {node.name} {node.status}")
    return f"::error {where}title={title}::{_data(node.failure_text())}"


def print_node_annotations(report: RunReport) -> None:
    """In a GitHub Actions job: the failed nodes' annotations, on stdout."""
    if os.environ.get("GITHUB_ACTIONS") == "true" and report.failures():
        print("\n".join(node_annotations(report)), flush=True)


def _data(text: str) -> str:
    """A workflow command's message: its line breaks kept, escaped as GitHub reads them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
