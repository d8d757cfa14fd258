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

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dbt_runner.aws import AwsSettings
from dbt_runner.config import NotifySettings, Policy, Trigger
from dbt_runner.outputs.notify.payloads import owner_reports, slack_message, summary
from dbt_runner.outputs.notify.transport import (
    NotifyError,
    resolve_header,
    safe_url,
    sender_for,
    sign,
)
from dbt_runner.report.model import Notification, RunReport

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dbt-Runner-Signature-256"
EVENT_HEADER = "X-Dbt-Runner-Event"
DELIVERY_HEADER = "X-Dbt-Runner-Delivery"


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
    retries).
    `settings`: DBT_RUNNER_NOTIFY__*; `report`: the run's; `aws_settings`: for triggers'
    secrets; `quiet`: log nothing."""
    deliveries, problems = _deliveries(settings, report, aws_settings)
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    sent = []
    for delivery in deliveries:
        url = safe_url(delivery.url)
        try:
            sender_for(settings, deadline).send(
                delivery.url, delivery.body, delivery.headers, delivery.method
            )
            sent.append(Notification(channel=delivery.channel, url=url, ok=True))
            if not quiet:
                log.info("notified %s (%s)", delivery.channel, url)
        except NotifyError as exc:
            problems.append(f"{delivery.channel} ({url}): {exc}")
            sent.append(Notification(channel=delivery.channel, url=url, ok=False, error=str(exc)))
    return sent, [f"notification failed, exit code unchanged: {problem}" for problem in problems]


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
