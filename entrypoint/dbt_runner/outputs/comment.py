"""The pull request's comment: the run and its impact on the data, one comment per
project and env, found again by its marker and updated in place on every run.

Through PyGithub (GITHUB_API_URL for GitHub Enterprise); a comment that cannot be
written is a warning, never the run's failure.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dbt_runner.errors import InfraError
from dbt_runner.report.markdown import md_impact
from dbt_runner.report.model import STATUS_ICONS, RunReport
from dbt_runner.versions import runner_version

if TYPE_CHECKING:
    from dbt_runner.config.review import GitHubSettings

log = logging.getLogger(__name__)

TIMEOUT_S = 10
RETRIES = 2


def marker(report: RunReport) -> str:
    return f"<!-- dbt-runner impact: {report.project}/{report.env} -->"


def why_no_comment(settings: GitHubSettings, report: RunReport) -> str | None:
    """Why this run does not comment; None when it does. Said as a warning only when a
    token was given (without one, not commenting is the expected case)."""
    if report.pr is None or not settings.comment or settings.token is None:
        return ""
    if not report.pr.pr.isdigit():
        return f"no pull-request comment: DBT_RUNNER_PR '{report.pr.pr}' is not a number"
    if not settings.repository or settings.repository.count("/") != 1:
        return "no pull-request comment: GITHUB_REPOSITORY (owner/name) is not set"
    return None


def comment_body(report: RunReport) -> str:
    icon = STATUS_ICONS.get(report.status, "")
    lines = [
        marker(report),
        f"## {icon} dbt-runner: {report.project}/{report.env} {report.job}, {report.status}",
        "",
        f"Run `{report.run_id}` · exit code {report.exit_code} · {report.duration_s:.1f} s",
        "",
    ]
    if report.impact is not None:
        lines += md_impact(report.impact)
    else:
        impact = next((p for p in report.phases if p.name == "impact"), None)
        why = impact.message if impact is not None else "no impact measured in this run"
        lines += [f"Impact on the data: {why}", ""]
    if (report.links.report_url or "").startswith(("https://", "http://")):
        lines.append(f"[The run page]({report.links.report_url})")
    return "\n".join(lines)


def post_comment(settings: GitHubSettings, report: RunReport) -> str:
    """Create or update the pull request's comment; its URL."""
    import requests
    from github import Auth, Github, GithubException  # a slow import: only when commenting

    assert settings.token is not None and settings.repository and report.pr  # noqa: S101
    client = Github(
        base_url=settings.api_url,
        auth=Auth.Token(settings.token.get_secret_value()),
        timeout=TIMEOUT_S,
        retry=RETRIES,
        user_agent=f"dbt-runner/{runner_version()}",
        lazy=True,
    )
    try:
        issue = client.get_repo(settings.repository).get_issue(int(report.pr.pr))
        body, mark = comment_body(report), marker(report)
        for existing in issue.get_comments():
            if mark in (existing.body or ""):
                existing.edit(body)
                log.info("pull request %s: comment updated", report.pr.pr)
                return str(existing.html_url)
        created = issue.create_comment(body)
        log.info("pull request %s: comment created", report.pr.pr)
        return str(created.html_url)
    except GithubException as exc:
        said = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        raise InfraError(f"GitHub answered {exc.status}: {said or 'no message'}") from exc
    except (requests.RequestException, OSError) as exc:  # unreachable: not the runner's bug
        reason = " ".join(str(exc).split())[:200]
        raise InfraError(
            f"GitHub's API at {settings.api_url} could not be reached ({type(exc).__name__}: "
            f"{reason}); check GITHUB_API_URL and the runner's network"
        ) from exc
    finally:
        client.close()
