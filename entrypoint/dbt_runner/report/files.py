"""Report files: the RunReport rendered for the places people look.

`report.json` (the model itself), `summary.md` (also appended to
`$GITHUB_STEP_SUMMARY`), `junit.xml` (a suite per phase, a case per executed node or
linted file, a failing case for a phase or stage that failed without nodes) and, when
the run linted, `lint.sarif` (SARIF 2.1.0, for GitHub code scanning).
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path
from typing import Any

from dbt_runner.report.html import render
from dbt_runner.report.model import (
    STATUS_ICONS,
    FreshInfo,
    HistoryInfo,
    LintInfo,
    NodeResult,
    PhaseResult,
    RunReport,
    StateInfo,
)

REPORT_FILES = ("report.json", "report.html", "summary.md", "junit.xml", "lint.sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


# --- summary.md -----------------------------------------------------------------


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
        ]
    return [f"**Full build:** {_md_cell(state.reason)}", ""] if state.reason else []


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
        lines.append(
            f"- `{node.unique_id}` ({node.phase}, {node.status}{owner}): {_md_cell(node.message)}"
        )
    if len(failures) > limit:
        lines.append(f"- … and {len(failures) - limit} more (see report.json)")
    return [*lines, ""]


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
    lines += _md_fresh(report.fresh) if report.fresh is not None else []
    errors = [f"- **{e.stage}** (exit {e.exit_code}): {_md_cell(e.message)}" for e in report.errors]
    lines += _md_section("Errors", errors)
    failures = report.failures()
    lines += _md_failures(failures, max_failures) if failures else []
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


# --- junit.xml ------------------------------------------------------------------

_COUNTS = ("tests", "failures", "errors", "skipped")


def _junit_node(suite: ET.Element, project: str | None, node: NodeResult) -> str | None:
    """A node's test case; returns what it counts as besides a test (or None)."""
    case = ET.SubElement(
        suite,
        "testcase",
        name=node.unique_id,
        classname=f"{project}.{node.resource_type}",
        time=f"{node.execution_time_s:.3f}",
    )
    if node.path:
        case.set("file", node.path)
    message = node.message or node.status
    if node.outcome == "failed":
        tag = "failure" if node.status == "fail" else "error"
        element = ET.SubElement(case, tag, message=message.splitlines()[0][:500], type=node.status)
        element.text = message
        return "failures" if tag == "failure" else "errors"
    if node.outcome == "skipped":
        ET.SubElement(case, "skipped", message=message.splitlines()[0][:500])
        return "skipped"
    return None


def _junit_error_case(suite: ET.Element, name: str, message: str) -> None:
    case = ET.SubElement(suite, "testcase", name=name, classname="dbt-runner")
    element = ET.SubElement(case, "error", message=message[:500])
    element.text = message


def _junit_lint(suite: ET.Element, lint: LintInfo) -> dict[str, int]:
    """The lint suite: a case per linted file, failing with that file's findings."""
    counts = dict.fromkeys(_COUNTS, 0)
    for file in lint.files:
        case = ET.SubElement(suite, "testcase", name=f"{lint.prefix}{file}", classname="sqlfluff")
        case.set("file", f"{lint.prefix}{file}")
        counts["tests"] += 1
        found = [f for f in lint.findings if f.file == file]
        if found:
            counts["failures"] += 1
            text = "\n".join(f"{f.line}:{f.column} {f.rule} {f.message}" for f in found)
            element = ET.SubElement(
                case, "failure", message=f"{len(found)} finding(s)", type="lint"
            )
            element.text = text
    return counts


def _junit_phase(root: ET.Element, report: RunReport, phase: PhaseResult) -> dict[str, int]:
    nodes = [node for node in report.nodes if node.phase == phase.name]
    suite = ET.SubElement(root, "testsuite", name=phase.name)
    if phase.name == "lint" and report.lint is not None:
        counts = _junit_lint(suite, report.lint)
        for key, value in counts.items():
            suite.set(key, str(value))
        suite.set("time", f"{phase.duration_s:.3f}")
        return counts
    counts = dict.fromkeys(_COUNTS, 0)
    for node in nodes:
        counts["tests"] += 1
        kind = _junit_node(suite, report.project, node)
        if kind:
            counts[kind] += 1
    if phase.status in ("error", "interrupted") or (phase.status == "failed" and not nodes):
        # A phase that failed without node results still shows up as a failure.
        _junit_error_case(suite, f"phase:{phase.name}", phase.message or phase.status)
        counts["tests"] += 1
        counts["errors"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{phase.duration_s:.3f}")
    return counts


def to_junit(report: RunReport) -> bytes:
    """JUnit XML: a suite per phase, a case per executed node, a case per failed phase
    or stage, so a test reporter never shows green for a broken run."""
    root = ET.Element("testsuites", name=f"dbt-runner {report.project}/{report.env}")
    totals = dict.fromkeys(_COUNTS, 0)
    for phase in report.phases:
        for key, value in _junit_phase(root, report, phase).items():
            totals[key] += value
    # A phase's own error already has its case above.
    errors = [e for e in report.errors if e.stage not in {p.name for p in report.phases}]
    if errors:
        suite = ET.SubElement(root, "testsuite", name="runner", tests=str(len(errors)))
        suite.set("errors", str(len(errors)))
        for error in errors:
            _junit_error_case(suite, f"stage:{error.stage}", error.message)
        totals["tests"] += len(errors)
        totals["errors"] += len(errors)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{report.duration_s:.3f}")
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"


# --- lint.sarif -------------------------------------------------------------------


def to_sarif(lint: LintInfo, tool_version: str) -> dict[str, Any]:
    """SARIF 2.1.0, for GitHub code scanning: a result per finding, a rule per code."""
    codes = sorted({finding.rule for finding in lint.findings})
    names = {finding.rule: finding.name for finding in lint.findings}
    rules = [
        {"id": code, "name": names[code], "shortDescription": {"text": names[code]}}
        for code in codes
    ]
    results = [
        {
            "ruleId": finding.rule,
            "ruleIndex": codes.index(finding.rule),
            "level": "warning",
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"{lint.prefix}{finding.file}"},
                        "region": {"startLine": finding.line, "startColumn": finding.column},
                    }
                }
            ],
        }
        for finding in lint.findings
    ]
    driver = {
        "name": "SQLFluff",
        "version": tool_version,
        "informationUri": "https://docs.sqlfluff.com",
        "rules": rules,
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }


# --- the files --------------------------------------------------------------------


def write_report_files(report: RunReport, folder: Path) -> list[Path]:
    """Write report.json, report.html, summary.md, junit.xml (and lint.sarif) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "report.json": report.model_dump_json(indent=2).encode(),
        "report.html": render(report).encode(),
        "summary.md": to_markdown(report).encode(),
        "junit.xml": to_junit(report),
    }
    if report.lint is not None:
        sarif = to_sarif(report.lint, _sqlfluff_version())
        contents["lint.sarif"] = json.dumps(sarif, indent=2).encode()
    paths = []
    for name, data in contents.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def _sqlfluff_version() -> str:
    try:
        return metadata.version("sqlfluff")
    except metadata.PackageNotFoundError:
        return "unknown"


def append_step_summary(report: RunReport) -> None:
    """Add the summary to a GitHub Actions job page, when running in one."""
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with Path(step_summary).open("a", encoding="utf-8") as handle:
            handle.write(to_markdown(report) + "\n")
