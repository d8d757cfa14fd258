"""What each channel is told: the webhook's JSON summary, Slack's message (and each
owner's, with only their failures)."""

from __future__ import annotations

from typing import Any

from dbt_runner.report.model import STATUS_ICONS, FreshInfo, HistoryInfo, RunReport


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
        "impact": report.impact.headline() if report.impact else None,
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
    blocks += [_section(text) for text in [*_notes(report, max_failures), *_what_ran(report)]]
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


def _what_ran(report: RunReport) -> list[str]:
    """A fresh job's skips, a slim job's children, a pull request's impact: a line each."""
    lines = [_fresh_line(report.fresh)] if report.fresh is not None else []
    if report.state is not None and report.state.reach is not None:
        lines.append(f"*Children:* {_clip(report.state.reach.headline())}")
    if report.impact is not None:
        lines.append(f"*Impact:* {_clip(report.impact.headline())}")
    return lines


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
