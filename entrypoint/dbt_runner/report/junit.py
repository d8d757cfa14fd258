"""junit.xml: a suite per phase and a case per executed node or linted file; a phase or
stage that failed without nodes is a failing case too, so a test reporter never shows
green for a broken run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dbt_runner.report.model import LintInfo, NodeResult, PhaseResult, RunReport

_COUNTS = ("tests", "failures", "errors", "skipped")


def _junit_node(suite: ET.Element, report: RunReport, node: NodeResult) -> str | None:
    """A node's test case (its file from the repository's root in a workflow); returns
    what it counts as besides a test (or None)."""
    case = ET.SubElement(
        suite,
        "testcase",
        name=node.unique_id,
        classname=f"{report.project}.{node.resource_type}",
        time=f"{node.execution_time_s:.3f}",
    )
    if node.path:
        case.set("file", report.path_prefix + node.path)
    message = node.message or node.status
    if node.outcome == "failed":
        tag = "failure" if node.status == "fail" else "error"
        element = ET.SubElement(case, tag, message=message.splitlines()[0][:500], type=node.status)
        element.text = node.failure_text()
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
        kind = _junit_node(suite, report, node)
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
