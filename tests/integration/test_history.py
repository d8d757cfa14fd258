"""Run history on S3 (moto), regressions and flaky tests on PostgreSQL, and failures
routed to their owners' receivers (real HTTP servers)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.integration.test_failures import add_failures
from tests.support import Moto, Postgres, read_json, run_cli

SLOW_MODEL = "select pg_sleep({{ var('sleep', 0) }}) is null as slept, 1 as one\n"
# Fails when the var says so: a test that fails in some runs and passes in others.
FLAKY_TEST = "select 1 as failing where {{ var('flaky', 0) }} = 1\n"
SLEEP_S = 6.0  # the slow run of slow_model
FLOOR_S = 4.0  # DBT_RUNNER_HISTORY__SLOWER_FLOOR_S


def collecting(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        return Response("ok")

    httpserver.expect_request(path, method="POST").respond_with_handler(handle)
    return received


def test_history_regressions_and_flaky_tests(
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    tmp_path: Path,
    postgres: Postgres,
    moto: Moto,
    httpserver: HTTPServer,
) -> None:
    (demo_project / "models" / "marts" / "slow_model.sql").write_text(SLOW_MODEL)
    (demo_project / "tests" / "sometimes_fails.sql").write_text(FLAKY_TEST)
    bucket = "history-" + uuid.uuid4().hex[:8]
    moto.client("s3").create_bucket(Bucket=bucket)
    slack = collecting(httpserver, "/slack")
    env |= moto.env | postgres.warehouse_env("hist_" + uuid.uuid4().hex[:8])
    env |= {
        "DBT_RUNNER_ARTIFACTS_URL": f"s3://{bucket}/dbt",
        "DBT_RUNNER_JOB": "custom",
        "DBT_RUNNER_PHASES": "deps,seed,build",
        "DBT_RUNNER_HISTORY__MIN_RUNS": "2",
        # Wide enough that no other node of the demo crosses it on a loaded machine.
        "DBT_RUNNER_HISTORY__SLOWER_FLOOR_S": str(FLOOR_S),
        "DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL": httpserver.url_for("/slack"),
    }
    reports = []
    # Fast and failing, fast and passing, then slow and failing again.
    for run_vars, code in (({"flaky": 1}, 1), ({}, 0), ({"sleep": SLEEP_S, "flaky": 1}, 1)):
        result = run_cli("run", env=env | {"DBT_RUNNER_VARS": json.dumps(run_vars)})
        assert result.returncode == code, result.stdout[-3000:] + result.stderr
        reports.append(read_json(tmp_path / "work" / "report" / "report.json"))

    first, _, last = reports
    assert first["history"]["runs_compared"] == 0
    assert first["history"]["regressions"] == [] and first["history"]["flaky"] == []
    history = last["history"]
    assert history["runs_compared"] == 2
    slow = [r for r in history["regressions"] if r["unique_id"] == "model.demo.slow_model"]
    assert len(slow) == 1 and slow[0]["duration_s"] >= SLEEP_S and slow[0]["runs"] == 2
    assert slow[0]["median_s"] < SLEEP_S - FLOOR_S
    # Nothing else ran slower by the floor and twice over.
    assert [r["unique_id"] for r in history["regressions"]] == ["model.demo.slow_model"]
    assert history["flaky"] == [
        {"unique_id": "test.demo.sometimes_fails", "failed": 2, "runs": 3, "owner": None}
    ]

    summary = (tmp_path / "work" / "report" / "summary.md").read_text()
    assert "### Slower than usual" in summary and "`model.demo.slow_model`" in summary
    assert "### Flaky tests" in summary and "`test.demo.sometimes_fails`: failed in 2" in summary
    text = json.dumps(slack[-1])
    assert "Slower than usual" in text and "model.demo.slow_model" in text
    assert "Flaky tests" in text and "test.demo.sometimes_fails" in text

    # Three runs, three files in the date partition, one DuckDB query over all of them.
    local = tmp_path / "history"
    s3 = moto.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dbt/demo/dev/history/")["Contents"]
    assert len(listed) == 3
    for item in listed:
        target = local / item["Key"].removeprefix("dbt/demo/dev/history/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, item["Key"], str(target))
    rows = (
        duckdb.connect()
        .execute(
            f"""
        select run_id, date, unique_id, status, execution_time_s, rows_affected
        from read_json_auto('{local}/*/*.jsonl.gz', hive_partitioning = true)
        """
        )
        .fetchall()
    )
    assert {row[0] for row in rows} == {r["run_id"] for r in reports}
    assert {str(row[1]) for row in rows} == {r["started_at"][:10] for r in reports}
    seeded = {row[5] for row in rows if row[2] == "seed.demo.raw_orders"}
    count = postgres.query(f"select count(*) from {env['DBT_RUNNER_WAREHOUSE__SCHEMA']}.raw_orders")
    assert seeded == {count[0][0]}  # rows affected, as the adapter reported them
    assert last["history"]["url"].startswith(f"s3://{bucket}/dbt/demo/dev/history/date=")


OWNERS_YML = """
groups:
  - name: finance
    owner:
      name: finance-team
      email: finance@example.com
models:
  - name: broken_model
    config:
      group: finance
  - name: growth_model
    config:
      meta:
        owner: growth
"""


def test_failures_go_to_their_owners(
    env: dict[str, str], demo_project: Path, out_dir: Path, httpserver: HTTPServer
) -> None:
    add_failures(demo_project)
    marts = demo_project / "models" / "marts"
    failing = "select no_such_thing from {{ ref('stg_customers') }}\n"
    (marts / "growth_model.sql").write_text(failing)
    (marts / "_owners.yml").write_text(OWNERS_YML)
    finance = collecting(httpserver, "/finance")
    growth = collecting(httpserver, "/growth")
    quiet = collecting(httpserver, "/quiet")
    job = collecting(httpserver, "/job")
    env |= {
        "DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL": httpserver.url_for("/job"),
        "DBT_RUNNER_NOTIFY__OWNERS": json.dumps(
            {
                "finance-team": httpserver.url_for("/finance"),
                "growth": httpserver.url_for("/growth"),
                "nobody-failed": httpserver.url_for("/quiet"),
            }
        ),
    }
    result = run_cli("run", env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    owners = {n["unique_id"]: n["owner"] for n in report["nodes"] if n["outcome"] == "failed"}
    assert owners == {
        "model.demo.broken_model": "finance-team",
        "model.demo.growth_model": "growth",
        "test.demo.assert_no_orders": None,
    }
    assert len(finance) == 1 and len(growth) == 1 and quiet == [] and len(job) == 1
    finance_text, growth_text = json.dumps(finance[0]), json.dumps(growth[0])
    assert "finance-team: 1 failure(s)" in finance[0]["text"]
    assert "model.demo.broken_model" in finance_text and "no_such_column" in finance_text
    assert "growth_model" not in finance_text and "assert_no_orders" not in finance_text
    assert "model.demo.growth_model" in growth_text and "broken_model" not in growth_text
    # The job's own message has every failure, with its owner.
    job_text = json.dumps(job[0])
    assert "broken_model` (error, owner finance-team)" in job_text
    assert "assert_no_orders" in job_text
    channels = {n["channel"]: n["ok"] for n in report["notifications"]}
    assert channels == {"slack": True, "owner finance-team": True, "owner growth": True}
