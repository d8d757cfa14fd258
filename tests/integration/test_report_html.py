"""The run page in a real browser (Debian's headless Chromium): a failing run from
file:// and from an HTTP server, a successful, a stopped and a misconfigured run, and
hostile names and messages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dbt_runner.report.html import render
from dbt_runner.report.model import NodeResult, RunReport
from tests.browser import file_server, headless, page_requests, recording_proxy
from tests.integration.test_failures import add_failures
from tests.support import ROOT, read_json, run_cli

SCREENSHOTS = ROOT / "build" / "test-artifacts"
NODE_PHASES = {"seed", "snapshot", "run", "test", "build", "freshness"}


def bars(dom: str) -> int:
    return len(re.findall(r'<rect class="bar (?:ok|warn|failed)"', dom))


def executed(report: dict[str, Any]) -> int:
    return sum(
        1
        for n in report["nodes"]
        if n["outcome"] != "skipped" and n["started_at"] and n["finished_at"]
    )


def test_a_failing_run_in_a_real_browser(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    add_failures(demo_project)
    env |= {"DBT_RUNNER_ARTIFACTS_PUBLIC_URL": "https://dbt.example.com/artifacts"}
    result = run_cli("run", env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    run_folder = out_dir / "demo" / "dev" / "runs" / report["run_id"]
    assert (run_folder / "report.html").read_text() == (out_dir / "report.html").read_text()
    assert (out_dir / "demo" / "dev" / "docs" / "report.html").is_file()  # beside the docs
    page = f"https://dbt.example.com/artifacts/demo/dev/runs/{report['run_id']}/report.html"
    assert report["links"]["report_url"] == page

    with recording_proxy() as (proxy, outside):
        from_file = headless((run_folder / "report.html").as_uri(), "--dump-dom", proxy=proxy)
        with file_server(out_dir) as (server, asked):
            path = f"/demo/dev/runs/{report['run_id']}/report.html"
            from_http = headless(server + path, "--dump-dom", proxy=proxy)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / "report-failing-run.png"
            headless(server + path, f"--screenshot={shot}", proxy=proxy)
    assert page_requests(outside) == []  # nothing beyond loopback but the browser's own
    assert set(asked) == {path}  # nothing outside its own folder (no favicon either)
    assert shot.stat().st_size > 10_000

    # Nothing in the page loads anything: no src, no stylesheet, no url() but data:.
    assert not re.search(r"\bsrc=|<link(?![^>]*href=\"data:)[^>]*>|url\((?!data:)", from_file)
    for dom in (from_file, from_http):
        # The failing model and dbt's message come before any other node.
        first = re.search(r"(model|seed|snapshot|test)\.demo\.\w+", dom)
        assert first is not None and first.group() == "model.demo.broken_model"
        message = dom.index("no_such_column")
        assert message < dom.index("model.demo.orders") and message < dom.index('id="timeline"')
        assert "test.demo.assert_no_orders" in dom[: dom.index('id="timeline"')]
        assert "Compiled SQL" in dom and "models/marts/broken_model.sql" in dom
        assert bars(dom) == executed(report) > 20
        assert "Failures (2)" in dom and "exit code <b>1</b>" in dom


def test_a_successful_run_says_so(env: dict[str, str], out_dir: Path) -> None:
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    dom = headless((out_dir / "report.html").as_uri(), "--dump-dom")
    report = read_json(out_dir / "report.json")
    assert "demo/dev full: success" in dom and 'id="failures"' not in dom
    assert bars(dom) == executed(report)
    assert "Docs</a>" in dom  # the docs link, a file:// one here


def test_a_stopped_run_says_what_stopped_it(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    # A query that would run for minutes; the run's timeout stops it.
    (demo_project / "models" / "marts" / "endless.sql").write_text(
        "select sum(hash(range)) as n from range(100000000000)\n"
    )
    env |= {"DBT_RUNNER_TIMEOUT_S": "20", "DBT_RUNNER_JOB": "custom"}
    env |= {"DBT_RUNNER_PHASES": "deps,seed,build", "DBT_RUNNER_THREADS": "1"}
    result = run_cli("run", env=env)
    assert result.returncode == 124, result.stdout[-3000:] + result.stderr
    dom = headless((out_dir / "report.html").as_uri(), "--dump-dom")
    assert "demo/dev custom: timed_out</h1>" in dom
    assert 'id="stopped"' in dom and "dbt-runner retry" in dom
    assert "Skipped (" in dom  # what the stop left undone is listed


def test_a_config_error_with_no_nodes_says_what_to_fix(env: dict[str, str], out_dir: Path) -> None:
    env |= {"DBT_RUNNER_WAREHOUSE__TYPE": "postgres"}  # and no host
    result = run_cli("run", env=env)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    dom = headless((out_dir / "report.html").as_uri(), "--dump-dom")
    assert ": config_error</h1>" in dom and 'id="timeline"' not in dom
    assert "What went wrong" in dom
    assert report["errors"][0]["message"].split(":")[0] in dom


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def test_everything_printed_is_escaped(tmp_path: Path) -> None:
    hostile = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'
    start = datetime(2026, 11, 23, tzinfo=UTC)
    report = RunReport(runner_version="0", env="dev", job="full", run_id="r", project=hostile)
    report.nodes = [
        NodeResult(
            unique_id=f"model.p.{hostile}",
            name=hostile,
            resource_type="model",
            phase="build",
            status="error",
            outcome="failed",
            message=hostile,
            path=hostile,
            owner=hostile,
            compiled_sql=hostile,
            thread=hostile,
            started_at=start,
            finished_at=start + timedelta(seconds=1),
        )
    ]
    report.warnings = [hostile]
    report.finish()
    html = render(report)
    parsed = _Elements()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags and parsed.handlers == []
    assert "&lt;script&gt;" in html
    page = tmp_path / "report.html"
    page.write_text(html)
    dom = headless(page.as_uri(), "--dump-dom")
    # Had the script run, the title would be "owned"; it is the text of the headline.
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title != "owned" and "&lt;script&gt;document.title=" in title
    assert bars(dom) == 1 and dom.count("&lt;script&gt;") >= 6


def test_slack_the_webhook_and_the_summary_link_the_page(
    env: dict[str, str], out_dir: Path, httpserver: HTTPServer
) -> None:
    received: dict[str, Any] = {}

    def keep(name: str) -> Any:
        def handle(request: Request) -> Response:
            received[name] = json.loads(request.get_data())
            return Response("ok")

        return handle

    httpserver.expect_request("/slack").respond_with_handler(keep("slack"))
    httpserver.expect_request("/hook").respond_with_handler(keep("webhook"))
    summary_file = out_dir.parent / "step-summary.md"
    env |= {
        "DBT_RUNNER_ARTIFACTS_PUBLIC_URL": "https://dbt.example.com/a",
        "GITHUB_STEP_SUMMARY": str(summary_file),
        "DBT_RUNNER_JOB": "custom",
        "DBT_RUNNER_PHASES": "deps,seed",
        "DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL": httpserver.url_for("/slack"),
        "DBT_RUNNER_NOTIFY__WEBHOOK_URL": httpserver.url_for("/hook"),
    }
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    page = f"https://dbt.example.com/a/demo/dev/runs/{report['run_id']}/report.html"
    assert report["links"]["report_url"] == page
    assert f"[Run page]({page})" in summary_file.read_text()
    assert received["webhook"]["links"]["report_url"] == page
    assert f"<{page}|Run page>" in json.dumps(received["slack"])
