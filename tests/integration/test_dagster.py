"""Dagster Pipes, checked by a real Dagster: the example assets
(docker/deploy/dagster/assets.py), described by dagster-dbt from the demo's manifest,
materialized by the runner's package as a process in a Pipes session (the image through
PipesDockerClient: tests/sanity/test_dagster_image.py). Dagster's own event log is
read back by tests/dagster_job.py in Dagster's venv (make dagster-venv)."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, read_json, run_cli

DAGSTER_PYTHON = ROOT / ".venv-dagster" / "bin" / "python"
JOB = ROOT / "tests" / "dagster_job.py"
# A data test that fails with severity warn: a failed check, and the run still succeeds.
FAILING_TEST = """{{ config(severity='warn') }}
select order_id from {{ ref('orders') }} where order_id is not null
"""


KEYED = """{{ config(meta={'dagster': {'asset_key': ['finance', 'revenue_by_day']}}) }}
select * from {{ ref('daily_revenue') }}
"""
IN_SCHEMA = "{{ config(schema='reporting') }}\nselect 1 as one\n"


def materialize(env: dict[str, str], mode: str, *keys: str) -> dict[str, Any]:
    """The assets (all, or `keys`) materialized by Dagster; what its event log holds."""
    if not DAGSTER_PYTHON.exists():
        pytest.fail("Dagster's venv is missing: make dagster-venv")
    result = subprocess.run(
        [str(DAGSTER_PYTHON), str(JOB), mode, *keys],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    found["stderr"] = result.stderr
    return found


@pytest.fixture
def dagster_env(env: dict[str, str], demo_project: Path, out_dir: Path) -> dict[str, str]:
    """The demo with a failing warn test, parsed once for dagster-dbt's manifest."""
    (demo_project / "tests").mkdir(exist_ok=True)
    (demo_project / "tests" / "orders_have_no_ids.sql").write_text(FAILING_TEST)
    marts = demo_project / "models" / "marts"
    (marts / "revenue_by_day.sql").write_text(KEYED)  # its own key, in meta
    (marts / "in_reporting.sql").write_text(IN_SCHEMA)  # a configured schema
    for command in ("deps", "parse"):
        parsed = run_cli("dbt", "--", command, env=env)
        assert parsed.returncode == 0, parsed.stdout[-3000:]
    kept = out_dir.parent / "manifest.json"  # dbt's own passthrough writes the project's
    kept.write_bytes((demo_project / "target" / "manifest.json").read_bytes())
    return env | {
        "DAGSTER_DBT_MANIFEST": str(kept),
        "DAGSTER_DBT_RUNNER_COMMAND": str(ROOT / ".venv" / "bin" / "dbt-runner"),
    }


def report_of(out_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = read_json(out_dir / "report.json")
    return data


def test_dagster_sees_every_model_and_test_as_it_happens(
    dagster_env: dict[str, str], out_dir: Path
) -> None:
    found = materialize(dagster_env, "process")
    assert found["success"], found["failures"] + [found["stderr"][-3000:]]
    report = report_of(out_dir)
    built = [n for n in report["nodes"] if n["resource_type"] in ("model", "seed", "snapshot")]
    by_key = {m["key"]: m for m in found["materializations"]}
    # One materialization per built node, each a key dagster-dbt gave the assets.
    assert len(found["materializations"]) == len(built) == len(by_key)
    assert set(by_key) == set(found["asset_keys"])
    assert {"finance/revenue_by_day", "reporting/in_reporting"} <= set(by_key)
    orders = by_key["orders"]["metadata"]
    assert orders["dbt_runner_run_id"] == report["run_id"] and orders["dbt_runner_job"] == "full"
    assert orders["relation"].endswith('"orders"') and orders["execution_seconds"] >= 0
    # Every data test is a check on its node; the failing one failed, as a warning.
    checks = {c["name"]: c for c in found["checks"]}
    assert set(checks) <= set(found["check_names"]) and len(checks) == len(found["check_names"])
    failing = checks["orders_have_no_ids"]
    assert (failing["asset"], failing["passed"], failing["severity"]) == ("orders", False, "WARN")
    assert failing["metadata"]["failing_rows"] > 0
    # The SQL that found the rows (only on a check that failed).
    assert (
        'from "warehouse"."main"."orders" where order_id is not null'
        in (failing["metadata"]["compiled_sql"])
    )
    assert all("compiled_sql" not in c["metadata"] for c in checks.values() if c["passed"])
    assert all(c["passed"] for name, c in checks.items() if name != "orders_have_no_ids")
    # The runner's own log lines and its summary.
    messages = [log["message"] for log in found["logs"]]
    assert any("phase build: dbt build" in m for m in messages)
    assert not any("unexpected" in m.lower() for m in messages)


def test_two_assets_asked_for_build_exactly_those_two(
    dagster_env: dict[str, str], out_dir: Path, tmp_path: Path
) -> None:
    """...and the run, a part of its full job, never becomes the state."""
    env = dagster_env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    assert run_cli("run", env=env).returncode == 0  # their parents exist
    found = materialize(env, "process", "stg_orders", "orders")
    assert found["success"], found["failures"] + [found["stderr"][-3000:]]
    assert sorted(m["key"] for m in found["materializations"]) == ["orders", "stg_orders"]
    report = report_of(out_dir)
    models = sorted(
        n["name"] for n in report["nodes"] if n["resource_type"] in ("model", "seed", "snapshot")
    )
    assert models == ["orders", "stg_orders"]
    assert {c["asset"] for c in found["checks"]} <= {"orders", "stg_orders"}
    [said] = [
        log["message"] for log in found["logs"] if "not built by this full job" in log["message"]
    ]
    assert said.startswith("10 asset(s) not built by this full job (not selected): ")
    assert "stg_customers" in said and " orders" not in said
    assert report["state"]["promoted"] is False and report["builds_whole_project"] is False
    refused = "state not promoted: Dagster asked for part of the job's assets (10 left out)"
    assert refused in [log["message"] for log in found["logs"]]


def test_a_test_on_an_asset_not_asked_for_is_said_not_reported(
    dagster_env: dict[str, str], out_dir: Path
) -> None:
    """stg_customers alone: dbt runs the relationship test stg_orders -> stg_customers
    with it (a selected parent), but its check is on stg_orders, which Dagster's step
    does not have; Pipes would refuse it, and the events after it were lost (the step
    then failed for stg_customers' own checks)."""
    assert run_cli("run", env=dagster_env).returncode == 0  # stg_orders exists
    found = materialize(dagster_env, "process", "stg_customers")
    assert found["success"], found["failures"] + [found["stderr"][-3000:]]
    assert [m["key"] for m in found["materializations"]] == ["stg_customers"]
    ran = {n["name"] for n in report_of(out_dir)["nodes"] if n["resource_type"] == "test"}
    relationship = next(name for name in ran if name.startswith("relationships_stg_orders"))
    assert {c["asset"] for c in found["checks"]} == {"stg_customers"}
    assert relationship not in {c["name"] for c in found["checks"]}
    said = [log["message"] for log in found["logs"] if relationship in log["message"]]
    assert said and said[0].endswith("on asset stg_orders, which this step does not have")
    assert not any("events stopped" in log["message"] for log in found["logs"])


def test_a_slim_job_from_dagster_reports_what_it_built_and_nothing_it_deferred(
    dagster_env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """The example's slim schedule asks `plan --nodes` for the job's assets and launches
    exactly those: the change and the children it reaches are materialized, the models
    deferred to the state are not, Dagster's run succeeds, and the run, having built
    the whole slim job, becomes the state. Asked for every asset instead, Dagster fails
    the step (Pipes requires each asked-for asset), the runner says why, and still no
    deferred model is reported as materialized."""
    env = dagster_env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state"), "DBT_RUNNER_JOB": "slim"}
    assert run_cli("run", env=env).returncode == 0  # no state yet: everything, promoted
    orders = demo_project / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text().replace("o.status,", "o.status, 'v2' as version,"))

    found = materialize(env, "changes")
    assert found["success"], found["failures"] + [found["stderr"][-3000:]]
    report = report_of(out_dir)
    built = {n["name"] for n in report["nodes"] if n["resource_type"] in ("model", "seed")}
    assert "orders" in built and "stg_orders" not in built
    assert sorted(m["key"] for m in found["materializations"]) == found["tick"]["asked"]
    assert set(found["tick"]["asked"]) == built
    deferred = {"stg_orders", "stg_customers", "stg_payments"}
    assert {"model.demo.stg_orders", "model.demo.stg_payments"} <= set(report["state"]["deferred"])
    assert report["state"]["promoted"] and report["builds_whole_project"]
    assert not any("unexpected" in log["message"].lower() for log in found["logs"])

    again = materialize(env, "changes")  # the state now has the change
    assert again["tick"] == {"skipped": "nothing changed since the job's state"}

    orders.write_text(orders.read_text().replace("'v2' as version", "'v3' as version"))
    every = materialize(env, "process")
    assert not every["success"]
    assert any("did not yield or return expected outputs" in f for f in every["failures"])
    [said] = [log for log in every["logs"] if log["message"].startswith("Dagster asked for")]
    assert said["level"] == logging.ERROR
    assert "this slim job deferred to the state" in said["message"]
    assert "stg_orders" in said["message"] and "plan --nodes" in said["message"]
    reported = {m["key"] for m in every["materializations"]}
    assert "orders" in reported and not reported & deferred


def test_a_failing_model_fails_dagsters_run_with_its_error(
    dagster_env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    (demo_project / "models" / "marts" / "orders.sql").write_text("select * from no_such_table\n")
    found = materialize(dagster_env, "process")
    assert not found["success"]
    assert report_of(out_dir)["exit_code"] == 1
    assert any("failed with code 1" in failure for failure in found["failures"]), found["failures"]
    errors = [log["message"] for log in found["logs"] if "no_such_table" in log["message"]]
    assert errors and errors[0].startswith("model orders error")
    # Only what a node phase built: not the compile of docs generate, which runs after a
    # failed build (it compiled `orders` too, and that was a materialization).
    own_keys = {
        "revenue_by_day": "finance/revenue_by_day",
        "in_reporting": "reporting/in_reporting",
    }
    built = {
        own_keys.get(n["name"], n["name"])
        for n in report_of(out_dir)["nodes"]
        if n["phase"] in ("seed", "build") and n["outcome"] == "ok" and n["resource_type"] != "test"
    }
    keys = [m["key"] for m in found["materializations"]]
    assert "orders" not in keys and len(keys) == len(set(keys)) and set(keys) == built


def test_without_dagster_nothing_pipes_related_happens(env: dict[str, str]) -> None:
    result = run_cli("run", env=env)
    assert result.returncode == 0
    said = result.stdout + result.stderr
    assert "Dagster" not in said and "Pipes" not in said and "[pipes]" not in said


def test_pipes_that_do_not_open_leave_the_job_running_and_reported(
    env: dict[str, str], out_dir: Path
) -> None:
    """Dagster's variables set but unreadable: said once, and the job runs and reports
    as it would (it used to end at start-up, with no report)."""
    broken = {"DAGSTER_PIPES_CONTEXT": "not-base64", "DAGSTER_PIPES_MESSAGES": "not-base64"}
    result = run_cli("run", env=env | broken)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Dagster's Pipes variables are set, but Pipes did not open" in result.stdout
    assert report_of(out_dir)["status"] == "success"
