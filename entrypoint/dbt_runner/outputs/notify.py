"""Notify: every run ends with a notification, whatever happened.

Channels, each with a policy (always | failure | success | never):
- Slack incoming webhook: status, project, env, job, duration, node counts, the first
  failures with their messages, links to the docs and the run.
- A generic webhook: the run summary as JSON, signed with HMAC-SHA256 over the body in
  `X-Dbt-Runner-Signature-256: sha256=<hex>` (as GitHub signs its webhooks).
- Triggers: URLs called after a successful run (a BI tool's sync, an Airflow DAG run).

Every call has a timeout and a bounded retry (urllib3's Retry: backoff, 429/5xx and
connection errors). A failed notification is logged and never changes the exit code.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dbt_runner.aws import AwsSettings
from dbt_runner.config import NotifySettings, Policy, Trigger
from dbt_runner.errors import RunnerError
from dbt_runner.report.model import STATUS_ICONS, FreshInfo, HistoryInfo, Notification, RunReport

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dbt-Runner-Signature-256"
EVENT_HEADER = "X-Dbt-Runner-Event"
DELIVERY_HEADER = "X-Dbt-Runner-Delivery"


class NotifyError(Exception):
    pass


@dataclass
class Delivery:
    """One request to send: to which channel, where, and what."""

    channel: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


def wanted(policy: Policy, report: RunReport) -> bool:
    succeeded = report.exit_code == 0
    return {
        Policy.ALWAYS: True,
        Policy.SUCCESS: succeeded,
        Policy.FAILURE: not succeeded,
        Policy.NEVER: False,
    }[policy]


def safe_url(url: str) -> str:
    """A URL fit for a log line: scheme, host, port and path; no query or credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def summary(report: RunReport, max_failures: int = 10) -> dict[str, Any]:
    """The run as the webhook and triggers send it."""
    failures = report.failures()
    return {
        "event": "run.finished",
        "schema_version": report.schema_version,
        "project": report.project,
        "env": report.env,
        "job": report.job,
        "run_id": report.run_id,
        "status": report.status,
        "exit_code": report.exit_code,
        "started_at": report.started_at.isoformat(),
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "duration_s": report.duration_s,
        "runner_version": report.runner_version,
        "dbt_version": report.dbt_version,
        "adapter": report.adapter,
        "counts": report.counts(),
        "phases": [
            {"name": p.name, "status": p.status, "duration_s": p.duration_s} for p in report.phases
        ],
        "failures": [
            {
                "unique_id": n.unique_id,
                "phase": n.phase,
                "status": n.status,
                "message": n.message,
                "owner": n.owner,
            }
            for n in failures[:max_failures]
        ],
        "failures_total": len(failures),
        "errors": [{"stage": e.stage, "message": e.message} for e in report.errors],
        "skipped": report.skipped,
        "warnings": report.warnings,
        "links": report.links.model_dump(),
        "fresh": report.fresh.model_dump() if report.fresh else None,
        "history": report.history.model_dump(exclude={"url"}) if report.history else None,
    }


def _link(label: str, url: str | None) -> str | None:
    if not url:
        return None
    if url.startswith(("http://", "https://")):
        return f"<{url}|{label}>"
    return f"{label}: `{url}`"


def _clip(text: str | None, limit: int = 280) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(
    report: RunReport, max_failures: int = 10, owner: str | None = None
) -> dict[str, Any]:
    """The run as Slack shows it; `owner`: the message to one owner, about their nodes."""
    counts = report.counts()
    icon = STATUS_ICONS.get(report.status, "")
    title = f"{icon} {report.project or '?'}/{report.env} {report.job}: {report.status}"
    if owner:
        title = f"{icon} {owner}: {len(report.nodes)} failure(s) in {title.split(' ', 1)[1]}"
    nodes = " · ".join(f"{n} {k}" for k, n in counts.items() if n) or "no nodes"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Project*\n{report.project or '?'}"},
                {"type": "mrkdwn", "text": f"*Environment*\n{report.env}"},
                {"type": "mrkdwn", "text": f"*Job*\n{report.job}"},
                {"type": "mrkdwn", "text": f"*Duration*\n{report.duration_s:.1f} s"},
                {"type": "mrkdwn", "text": f"*Nodes*\n{nodes}"},
                {"type": "mrkdwn", "text": f"*Exit code*\n{report.exit_code}"},
            ],
        },
    ]
    blocks += [_section(text) for text in _notes(report, max_failures)]
    if report.fresh is not None:
        text = _fresh_line(report.fresh)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if report.history is not None:
        for text in _history_lines(report.history, max_failures):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    links = [
        link
        for link in (
            _link("Run page", report.links.report_url),
            _link("Docs", report.links.docs_url),
            _link("Run artifacts", report.links.run_url),
        )
        if link
    ]
    if links:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": " · ".join(links)}})
    context = (
        f"run `{report.run_id}` · dbt-runner {report.runner_version} · "
        f"dbt {report.dbt_version or '?'}"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{title} (exit code {report.exit_code})", "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _notes(report: RunReport, max_failures: int) -> list[str]:
    """Why the run did nothing, what failed, and the warnings: a Slack section each."""
    notes = [report.skipped] if report.skipped else []
    problems = _problem_lines(report, max_failures)
    notes += ["*Failures*\n" + "\n".join(problems)] if problems else []
    warnings = [f"• {_clip(w)}" for w in report.warnings[:max_failures]]
    notes += ["*Warnings*\n" + "\n".join(warnings)] if warnings else []
    return notes


def _problem_lines(report: RunReport, max_failures: int) -> list[str]:
    """The errors, then the first failed nodes with dbt's message and their owner."""
    problems = [f"• *{e.stage}*: {_clip(e.message)}" for e in report.errors]
    failures = report.failures()
    problems += [
        f"• `{n.unique_id}` ({n.status}{_owned(n.owner)}): {_clip(n.message)}"
        for n in failures[:max_failures]
    ]
    if len(failures) > max_failures:
        problems.append(f"… and {len(failures) - max_failures} more")
    return problems


def _owned(owner: str | None) -> str:
    return f", owner {owner}" if owner else ""


def _history_lines(history: HistoryInfo, limit: int) -> list[str]:
    """Regressions and flaky tests, one Slack section each (when there are any)."""
    sections = []
    slower = [
        f"• `{r.unique_id}` {r.duration_s:.1f} s, median {r.median_s:.1f} s "
        f"over {r.runs} runs{_owned(r.owner)}"
        for r in history.regressions[:limit]
    ]
    if slower:
        sections.append("*Slower than usual*\n" + "\n".join(slower))
    flaky = [
        f"• `{f.unique_id}` failed in {f.failed} of its last {f.runs} runs{_owned(f.owner)}"
        for f in history.flaky[:limit]
    ]
    if flaky:
        sections.append("*Flaky tests*\n" + "\n".join(flaky))
    return sections


def owner_reports(report: RunReport, owners: set[str]) -> dict[str, RunReport]:
    """For each owner in `owners` with failures in this run: the run as they see it,
    their failed nodes, regressions and flaky tests only."""
    views = {}
    for owner in sorted(owners):
        failed = [node for node in report.failures() if node.owner == owner]
        if not failed:
            continue
        history = None
        if report.history is not None:
            history = HistoryInfo(
                runs_compared=report.history.runs_compared,
                regressions=[r for r in report.history.regressions if r.owner == owner],
                flaky=[f for f in report.history.flaky if f.owner == owner],
            )
        views[owner] = report.model_copy(update={"nodes": failed, "errors": [], "history": history})
    return views


def _fresh_line(fresh: FreshInfo) -> str:
    sources = ", ".join(uid.split(".", 2)[-1] for uid in fresh.new_data) or "none"
    line = (
        f"*Fresh:* {fresh.models_built} built, {fresh.models_skipped} skipped "
        f"({fresh.model_seconds_skipped:.0f} model-seconds skipped) · new data in {sources}"
    )
    if fresh.assumed:
        line += f" · {len(fresh.assumed)} source(s) counted as new"
    return line


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Sender:
    """POSTs with a timeout and bounded retries."""

    def __init__(self, timeout_s: float, retries: int) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.timeout_s = timeout_s
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"POST", "PUT"}),
            raise_on_status=True,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send(self, url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> None:
        import requests

        try:
            response = self.session.request(
                method, url, data=body, headers=headers, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise NotifyError(_clip(str(exc), 200)) from exc
        if response.status_code >= 400:
            raise NotifyError(f"HTTP {response.status_code}")


def resolve_header(value: str, secrets: Callable[[str], str]) -> str:
    """A trigger header value: literal, `env:NAME` or `secret:SECRET_ID[#key]`."""
    if value.startswith("env:"):
        name = value[len("env:") :]
        if name not in os.environ:
            raise NotifyError(f"header variable {name} is not set")
        return os.environ[name]
    if value.startswith("secret:"):
        try:
            return secrets(value[len("secret:") :])
        except RunnerError as exc:
            raise NotifyError(exc.message) from exc
    return value


def _json(data: Any) -> bytes:
    return json.dumps(data, default=str).encode()


def _deliveries(
    settings: NotifySettings, report: RunReport, aws_settings: AwsSettings | None
) -> tuple[list[Delivery], list[str]]:
    """What to send for this run, and the triggers that could not even be prepared."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"dbt-runner/{report.runner_version}",
    }
    deliveries: list[Delivery] = []
    if settings.slack_webhook_url and wanted(settings.slack_policy, report):
        body = _json(slack_message(report, settings.max_failures))
        deliveries.append(
            Delivery("slack", settings.slack_webhook_url.get_secret_value(), body, headers)
        )
    if settings.webhook_url and wanted(settings.webhook_policy, report):
        body = _json(summary(report, settings.max_failures))
        signed = headers | {EVENT_HEADER: "run.finished", DELIVERY_HEADER: report.run_id}
        if settings.webhook_secret:
            signed[SIGNATURE_HEADER] = sign(body, settings.webhook_secret.get_secret_value())
        deliveries.append(
            Delivery("webhook", settings.webhook_url.get_secret_value(), body, signed)
        )
    for owner, view in owner_reports(report, set(settings.owners)).items():
        message = slack_message(view, settings.max_failures, owner)
        url = settings.owners[owner].get_secret_value()
        deliveries.append(Delivery(f"owner {owner}", url, _json(message), headers))
    problems: list[str] = []
    for index, trigger in enumerate(settings.triggers if report.exit_code == 0 else []):
        try:
            deliveries.append(_trigger(index, trigger, report, headers, aws_settings, settings))
        except NotifyError as exc:
            url = safe_url(trigger.url.get_secret_value())
            problems.append(f"trigger {index + 1} ({url}): {exc}")
    return deliveries, problems


def send_all(
    settings: NotifySettings,
    report: RunReport,
    aws_settings: AwsSettings | None = None,
    quiet: bool = False,
    budget_s: float | None = None,
) -> tuple[list[Notification], list[str]]:
    """Send every wanted notification: each one sent, and the problems (logged unless
    `quiet`). `budget_s`: the time all of them may take together (after a stop: no
    retries)."""
    deliveries, problems = _deliveries(settings, report, aws_settings)
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    sent = []
    for delivery in deliveries:
        url = safe_url(delivery.url)
        try:
            _sender(settings, deadline).send(
                delivery.url, delivery.body, delivery.headers, delivery.method
            )
            sent.append(Notification(channel=delivery.channel, url=url, ok=True))
            if not quiet:
                log.info("notified %s (%s)", delivery.channel, url)
        except NotifyError as exc:
            problems.append(f"{delivery.channel} ({url}): {exc}")
            sent.append(Notification(channel=delivery.channel, url=url, ok=False, error=str(exc)))
    return sent, [f"notification failed: {problem}" for problem in problems]


def _sender(settings: NotifySettings, deadline: float | None) -> Sender:
    """A sender with the settings' timeout and retries, or, against a deadline, what is
    left of it and no retry."""
    if deadline is None:
        return Sender(settings.timeout_s, settings.retries)
    left = deadline - time.monotonic()
    if left <= 0.1:
        raise NotifyError("not sent: the time for notifying after a stop was spent")
    return Sender(min(settings.timeout_s, left), 0)


def notify_invalid_settings(message: str) -> None:
    """The settings did not validate, so nothing ran: still tell the channels, if the
    notification settings themselves are valid. Quiet: stderr keeps its one line."""
    from pathlib import Path

    from dbt_runner.config import load_notify_settings, new_run_id
    from dbt_runner.errors import ExitCode
    from dbt_runner.versions import runner_version
    from dbt_runner.workspace.project import read_project

    settings = load_notify_settings()
    if settings is None:
        return
    env = os.environ
    report = RunReport(
        runner_version=runner_version(),
        env=env.get("DBT_RUNNER_ENV", "")[:32] or "unknown",
        job=env.get("DBT_RUNNER_JOB", "")[:32] or "full",
        run_id=new_run_id(),
    )
    with contextlib.suppress(RunnerError, OSError):  # the project may be what is wrong
        report.project = read_project(Path(env.get("DBT_RUNNER_PROJECT_DIR", ".")))[0]
    report.add_error("settings", message, ExitCode.CONFIG)
    report.finish()
    send_all(settings, report, quiet=True)


def _trigger(
    index: int,
    trigger: Trigger,
    report: RunReport,
    json_headers: dict[str, str],
    aws_settings: AwsSettings | None,
    settings: NotifySettings,
) -> Delivery:
    def secrets(reference: str) -> str:
        from dbt_runner import aws
        from dbt_runner.workspace.credentials.secrets_manager import secret_value

        return secret_value(reference, aws.client("secretsmanager", aws_settings))

    headers = json_headers | {EVENT_HEADER: "run.succeeded", DELIVERY_HEADER: report.run_id}
    for name, value in trigger.headers.items():
        headers[name] = resolve_header(value, secrets)
    payload = (
        trigger.body
        if trigger.body is not None
        else summary(report, settings.max_failures) | {"event": "run.succeeded"}
    )
    return Delivery(
        f"trigger {index + 1}",
        trigger.url.get_secret_value(),
        _json(payload),
        headers,
        trigger.method,
    )
