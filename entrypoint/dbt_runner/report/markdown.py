"""summary.md: the run in Markdown, as a pull request's step summary shows it."""

from __future__ import annotations

from dbt_runner.report.diff import DiffTable, diff_table
from dbt_runner.report.impact import ImpactInfo, ModelImpact
from dbt_runner.report.model import (
    STATUS_ICONS,
    FreshInfo,
    HistoryInfo,
    LintInfo,
    NodeResult,
    PhaseResult,
    PreparedInfo,
    RunReport,
    StateInfo,
)


def _md_cell(text: str | None, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _md_phases(phases: list[PhaseResult]) -> list[str]:
    lines = ["| Phase | Status | Duration | Nodes | Note |", "|---|---|---:|---|---|"]
    for phase in phases:
        nodes = ", ".join(f"{n} {k}" for k, n in phase.counts.items() if n) or "-"
        status = f"{STATUS_ICONS.get(phase.status, '')} {phase.status}"
        if phase.advisory and phase.status in ("failed", "error"):
            status += " (advisory)"
        lines.append(
            f"| {phase.name} | {status} | {phase.duration_s:.1f} s | {nodes} "
            f"| {_md_cell(phase.message, 120)} |"
        )
    return [*lines, ""]


def _md_state(state: StateInfo) -> list[str]:
    if state.mode == "slim":
        warm = " (warm parse)" if state.warm_parse else ""
        return [
            f"**Slim:** {len(state.built)} built, {len(state.skipped)} skipped, "
            f"{len(state.deferred)} deferred to state `{state.deferred_to}`{warm}",
            "",
            *_md_children(state),
        ]
    return [f"**Full build:** {_md_cell(state.reason)}", ""] if state.reason else []


def _md_children(state: StateInfo) -> list[str]:
    """How the descendants of the changes were chosen, each decision folded away."""
    if state.reach is None:
        return []
    lines = [f"**Children:** {_md_cell(state.reach.headline())}", ""]
    if state.children:
        lines += ["<details><summary>Each change and descendant</summary>", ""]
        lines += ["| Node | Built | Why |", "|---|---|---|"]
        lines += [
            f"| `{d.node}` | {'yes' if d.decision == 'build' else 'no'} "
            f"| {_md_cell(d.reason, 160)} |"
            for d in state.children
        ]
        lines += ["", "</details>", ""]
    return lines


def _md_prepared(prepared: PreparedInfo) -> list[str]:
    """What this run used of what `dbt-runner prepare` baked into its image."""
    parse = "its parse cache" if prepared.parse else f"not its parse ({prepared.reason})"
    packages = ", its packages (no `dbt deps`)" if prepared.packages else ""
    return [f"**Baked into the image:** {_md_cell(parse)}{packages}", ""]


def _md_fresh(fresh: FreshInfo) -> list[str]:
    def names(ids: list[str]) -> str:
        return ", ".join(f"`{uid.split('.', 2)[-1]}`" for uid in ids) or "none"

    lines = [
        f"**Fresh:** {fresh.models_built} model(s) built, {fresh.models_skipped} skipped "
        f"({fresh.model_seconds_skipped:.0f} model-seconds of builds skipped); new data in "
        f"{names(fresh.new_data)}",
        "",
    ]
    lines += [
        f"- counted as new: `{uid.split('.', 2)[-1]}` ({why})" for uid, why in fresh.assumed.items()
    ]
    lines += [f"- left for later: `{uid}` ({why})" for uid, why in fresh.too_soon.items()]
    return [*lines, ""] if len(lines) > 2 else lines


def _md_failures(failures: list[NodeResult], limit: int) -> list[str]:
    lines = [f"### Failures ({len(failures)})", ""]
    for node in failures[:limit]:
        owner = f", owner {node.owner}" if node.owner else ""
        table = diff_table(node.detail)
        said = table.intro if table is not None else node.message
        lines.append(f"- `{node.unique_id}` ({node.phase}, {node.status}{owner}): {_md_cell(said)}")
        lines += _md_detail(node, table)
    if len(failures) > limit:
        lines.append(f"- … and {len(failures) - limit} more (see report.json)")
    return [*lines, ""]


def _md_detail(node: NodeResult, table: DiffTable | None) -> list[str]:
    """Under a failure: a unit test's table row by row, dbt's other multi-line words as
    they are, and where a test's failing rows are stored."""
    lines: list[str] = []
    if table is not None:
        rows = [table.header, ["---"] * len(table.header), *table.rows]
        lines += ["", *(f"  | {' | '.join(_md_cell(c) for c in row)} |" for row in rows), ""]
    elif node.detail:
        lines += ["", "  ```", *(f"  {line}" for line in node.detail.splitlines()), "  ```", ""]
    failing = node.failing_rows()
    if failing:
        lines.append(f"  failing rows: `{failing}`")
    return lines


def _md_lint(lint: LintInfo, limit: int = 20) -> list[str]:
    found = lint.findings
    title = f"Lint: {len(found)} finding(s) in {len(lint.files)} file(s), {lint.config}"
    items = [
        f"- `{lint.prefix}{f.file}:{f.line}:{f.column}` {f.rule}: {_md_cell(f.message, 200)}"
        for f in found[:limit]
    ]
    if len(found) > limit:
        items.append(f"- … and {len(found) - limit} more (see lint.sarif)")
    return [f"### {title}", "", *items, ""]


def _md_history(history: HistoryInfo) -> list[str]:
    slower = [
        f"- `{r.unique_id}`: {r.duration_s:.1f} s, median {r.median_s:.1f} s over its last "
        f"{r.runs} successful runs" + (f" (owner {r.owner})" if r.owner else "")
        for r in history.regressions
    ]
    flaky = [
        f"- `{f.unique_id}`: failed in {f.failed} of its last {f.runs} runs"
        + (f" (owner {f.owner})" if f.owner else "")
        for f in history.flaky
    ]
    return _md_section("Slower than usual", slower) + _md_section("Flaky tests", flaky)


def md_impact(impact: ImpactInfo) -> list[str]:
    """What the pull request does to the data: a row per model with a difference (or
    not compared), then the models without one."""
    shown = impact.changed()
    title = (
        f"### Impact on the data: {impact.count('compared')} model(s) compared with "
        f"production, {len([m for m in shown if m.status == 'compared'])} changed"
    )
    lines = [title, ""]
    if shown:
        lines += ["| Model | Columns | Rows (production → PR) | Rows by key |", "|---|---|---|---|"]
        lines += [_md_impact_row(model) for model in shown]
        lines.append("")
    same = [f"`{m.name}`" for m in impact.unchanged()]
    lines += (
        [f"No difference (rows compared by key or content): {', '.join(same)}", ""] if same else []
    )
    lines += [f"**Gate:** {_md_cell(impact.gate)}", ""] if impact.gate else []
    return lines


def _md_impact_row(model: ModelImpact) -> str:
    name = f"`{model.name}`" + (" (edited)" if model.modified else "")
    if model.status != "compared":
        return f"| {name} | {_md_cell(model.summary())} | | |"
    columns, rows, by_key = model.columns_text(), model.rows_text(), model.by_key_text()
    return f"| {name} | {_md_cell(columns) or '—'} | {rows} | {_md_cell(by_key)} |"


def _md_link(label: str, url: str) -> str:
    return f"- [{label}]({url})" if url.startswith(("https://", "http://")) else f"- {label}: {url}"


def _md_section(title: str, items: list[str]) -> list[str]:
    return [f"### {title}", "", *items, ""] if items else []


def to_markdown(report: RunReport, max_failures: int = 20) -> str:
    counts = report.counts()
    lines = [
        f"## {STATUS_ICONS.get(report.status, '')} {report.headline()}",
        "",
        f"Run `{report.run_id}` · exit code {report.exit_code} · {report.duration_s:.1f} s · "
        f"dbt {report.dbt_version or '?'} · {report.adapter or 'profile'} · "
        f"runner {report.runner_version}",
        "",
        f"**Nodes:** {counts['ok']} ok, {counts['warn']} warn, "
        f"{counts['failed']} failed, {counts['skipped']} skipped",
        "",
    ]
    lines += [f"**Skipped:** {_md_cell(report.skipped)}", ""] if report.skipped else []
    lines += [f"**Target:** `{report.target.describe()}`", ""] if report.target else []
    lines += _md_phases(report.phases) if report.phases else []
    lines += _md_state(report.state) if report.state is not None else []
    lines += _md_prepared(report.prepared) if report.prepared is not None else []
    lines += _md_fresh(report.fresh) if report.fresh is not None else []
    errors = [f"- **{e.stage}** (exit {e.exit_code}): {_md_cell(e.message)}" for e in report.errors]
    lines += _md_section("Errors", errors)
    failures = report.failures()
    lines += _md_failures(failures, max_failures) if failures else []
    lines += md_impact(report.impact) if report.impact is not None else []
    lines += _md_lint(report.lint) if report.lint is not None else []
    lines += _md_history(report.history) if report.history is not None else []
    lines += _md_section("Warnings", [f"- {_md_cell(w)}" for w in report.warnings])
    links = (
        ("Run page", report.links.report_url),
        ("Run", report.links.run_url),
        ("Docs", report.links.docs_url),
    )
    lines += _md_section("Links", [_md_link(label, url) for label, url in links if url])
    return "\n".join(lines)
