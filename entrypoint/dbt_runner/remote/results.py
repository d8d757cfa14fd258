"""The run's reports, brought back to the caller: fetched from the artifacts the task
published into the local reports folder, then what a local run does with them in a
workflow (the step summary, the failed nodes' annotations, the pull request's
comment)."""

from __future__ import annotations

import logging
from pathlib import Path

from dbt_runner.aws import AwsSettings
from dbt_runner.config.review import GitHubSettings
from dbt_runner.errors import RunnerError
from dbt_runner.outputs.comment import post_comment, why_no_comment
from dbt_runner.report.github import append_step_summary, print_node_annotations
from dbt_runner.report.model import RunReport
from dbt_runner.storage import normalise_url, open_storage
from dbt_runner.storage.keys import run_key

log = logging.getLogger(__name__)

REPORT_FILES = ("report.json", "summary.md", "junit.xml", "report.html")


def fetch_reports(
    artifacts_url: str, where: tuple[str, str, str], folder: Path, aws: AwsSettings
) -> RunReport | None:
    """Copy the run's report files from `artifacts_url` into `folder`; its report, None
    when the task wrote none (it never ran). `where`: the project, env and run id of the
    run; `aws`: the timeouts of the S3 calls."""
    storage = open_storage(normalise_url(artifacts_url), aws)
    folder.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:  # an earlier run's must never pass for this one's
        (folder / name).unlink(missing_ok=True)
    fetched = []
    for name in REPORT_FILES:
        data = storage.get_bytes(run_key(*where, name))
        if data is not None:
            (folder / name).write_bytes(data)
            fetched.append(name)
    if "report.json" not in fetched:
        log.warning("no report from the task at %s", storage.url_for(run_key(*where)))
        return None
    log.info("reports fetched into %s: %s", folder, ", ".join(fetched))
    return RunReport.model_validate_json((folder / "report.json").read_bytes())


def publish_on_caller(report: RunReport, github: GitHubSettings) -> None:
    """In a workflow: the summary, the annotations, and the pull request's comment
    (a comment that cannot be written is a warning, as in a local run)."""
    append_step_summary(report)
    print_node_annotations(report)
    why = why_no_comment(github, report)
    if why:
        log.warning(why)
    if why is not None:
        return
    try:
        log.info("pull request comment: %s", post_comment(github, report))
    except RunnerError as exc:
        log.warning("no pull-request comment: %s", exc.message)
