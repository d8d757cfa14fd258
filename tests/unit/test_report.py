"""RunReport: exit-code precedence, and the Markdown and JUnit renderings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dbt_runner.errors import ExitCode
from dbt_runner.report.junit import to_junit
from dbt_runner.report.markdown import to_markdown
from dbt_runner.report.model import NodeResult, PhaseResult, report_schema
from tests.support import SCHEMA, node_result, run_report


@pytest.mark.parametrize(
    ("phases", "errors", "interrupted", "expected"),
    [
        ([("build", "success", False)], [], None, (0, "success")),
        ([("build", "failed", False)], [], None, (1, "failed")),
        ([("docs", "error", True), ("freshness", "failed", True)], [], None, (0, "success")),
        ([("parse", "error", False), ("build", "skipped", False)], [], None, (2, "error")),
        ([("build", "failed", False)], [ExitCode.INFRA], None, (4, "infra_error")),
        ([], [ExitCode.CONFIG], None, (3, "config_error")),
        ([("build", "interrupted", False)], [ExitCode.INFRA], 143, (143, "interrupted")),
    ],
)
def test_exit_code_precedence(phases, errors, interrupted, expected) -> None:
    r = run_report(*(PhaseResult(name=n, status=s, advisory=a) for n, s, a in phases))
    for code in errors:
        r.add_error("stage", "problem", code)
    r.stopped_by = interrupted
    r.finish()
    assert (r.exit_code, r.status) == expected
    assert r.finished_at is not None and r.duration_s >= 0


def test_junit_cases_failures_and_skips() -> None:
    r = run_report(
        PhaseResult(name="parse", status="success"),
        PhaseResult(name="build", status="failed"),
        PhaseResult(name="docs", status="error", advisory=True, message="catalog query failed"),
        nodes=[
            node_result("model.shop.a", "ok", "success"),
            node_result(
                "model.shop.b", "failed", "error", message="Database Error\n  column x missing"
            ),
            node_result(
                "test.shop.t", "failed", "fail", message="Got 3 results, configured to fail if != 0"
            ),
            node_result("model.shop.c", "skipped", "skipped"),
        ],
    )
    r.add_error("publish", "cannot write s3://b/k: timeout", ExitCode.INFRA)
    r.finish()
    root = ET.fromstring(to_junit(r))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "6",
        "1",
        "3",
        "1",
    )
    build = root.find("testsuite[@name='build']")
    assert build is not None
    b = build.find("testcase[@name='model.shop.b']/error")
    assert (
        b is not None
        and b.get("message") == "Database Error"
        and "column x missing" in (b.text or "")
    )
    assert build.find("testcase[@name='test.shop.t']/failure") is not None
    assert build.find("testcase[@name='model.shop.c']/skipped") is not None
    # A phase that errored without nodes, and a runner error, each show as a failing case.
    assert root.find("testsuite[@name='docs']/testcase[@name='phase:docs']/error") is not None
    assert root.find("testsuite[@name='runner']/testcase[@name='stage:publish']/error") is not None


def test_markdown_summary_escapes_and_limits() -> None:
    failures = [
        node_result(f"model.shop.m{i}", "failed", "error", message="bad | pipe\nsecond line")
        for i in range(25)
    ]
    r = run_report(
        PhaseResult(name="build", status="failed", counts={"ok": 0, "failed": 25}), nodes=failures
    )
    r.finish()
    text = to_markdown(r)
    assert "shop/prod full: failed" in text
    assert "bad \\| pipe second line" in text
    assert "… and 5 more" in text
    assert "| build | ❌ failed |" in text


def test_committed_schema_matches_the_model() -> None:
    assert SCHEMA.read_text() == report_schema(), (
        "run `make schema` and commit docs/report.schema.json"
    )


def test_timeline_lanes_are_concurrent_slots_reused_across_phases() -> None:
    from datetime import UTC, datetime, timedelta

    from dbt_runner.report.html import slots

    t0 = datetime(2026, 12, 2, tzinfo=UTC)

    def node(start: float, end: float, thread: str) -> NodeResult:
        return NodeResult(
            unique_id=f"model.p.{thread}_{start}",
            name="n",
            resource_type="model",
            phase="build",
            status="success",
            outcome="ok",
            started_at=t0 + timedelta(seconds=start),
            finished_at=t0 + timedelta(seconds=end),
            thread=thread,
        )

    # Seed's two threads, then build's three (new thread names): two at a time at most.
    nodes = [node(0, 2, "Thread-1"), node(0, 1, "Thread-2"), node(1, 3, "Thread-3")]
    nodes += [node(3, 4, "Thread-4"), node(3, 5, "Thread-5")]
    assert slots(nodes) == [0, 1, 1, 0, 1]
    assert max(slots(nodes)) + 1 == 2 < len({n.thread for n in nodes})


def _finish_in(folder: Path) -> Any:
    """The finishing steps of a run that publishes nowhere, its reports in `folder`."""
    from dbt_runner.run.finish import Finish
    from dbt_runner.run.stages import Stages

    settings = SimpleNamespace(report_folder=folder, run_dir=folder / "scratch")
    report = run_report(PhaseResult(name="build", status="success"))
    outcome = SimpleNamespace(settings=settings, workspace=None, marked=False)
    return Finish(outcome, report, Stages(report), lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("new_error", [False, True], ids=["as-notified", "a-step-failed"])
def test_final_write_rewrites_what_changed_since_the_first(new_error: bool, tmp_path: Path) -> None:
    """After notifying, report.json and the page say the final clock and notifications;
    the other files are written once, unless a step since added an error."""
    finish = _finish_in(tmp_path)
    paths = finish.reports()
    assert {p.name for p in paths} == {"report.json", "report.html", "summary.md", "junit.xml"}
    for path in paths:
        path.write_text("first write")
    if new_error:
        finish.report.add_error("notify", "the webhook is gone", ExitCode.INFRA)
    finish.report.finish()
    finish.final(paths)
    rewritten = {p.name for p in paths if p.read_text() != "first write"}
    expected = {"report.json", "report.html"} | (
        {"summary.md", "junit.xml"} if new_error else set()
    )
    assert rewritten == expected
    summary = (tmp_path / "summary.md").read_text()
    assert ("exit code 4" in summary) is new_error
    assert finish.report.timings["report"] > 0  # both writes, timed
