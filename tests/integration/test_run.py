"""The demo job end to end: a real dbt, a real DuckDB file and a real PostgreSQL."""

from __future__ import annotations

import csv
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest

from dbt_runner.storage.archive import archive_name, pack_project
from tests.support import DEMO, PHASES_OK, SCHEMA, Moto, Postgres, read_json, run_cli

# What the demo project holds, by (phase, resource type).
DEMO_NODES = {
    ("seed", "seed"): 3,
    ("build", "model"): 6,
    ("build", "snapshot"): 1,
    ("build", "test"): 16,
    ("build", "unit_test"): 1,
    ("freshness", "source"): 1,
}


def expected_figures() -> dict[str, Any]:
    """What the marts must hold, computed from the seed CSVs without dbt."""
    seeds = DEMO / "seeds"
    with (seeds / "raw_orders.csv").open() as handle:
        orders = list(csv.DictReader(handle))
    with (seeds / "raw_payments.csv").open() as handle:
        payments = list(csv.DictReader(handle))
    kept = {row["id"] for row in orders if row["status"] != "returned"}
    revenue = sum(
        (Decimal(row["amount_cents"]) / 100 for row in payments if row["order_id"] in kept),
        Decimal(0),
    )
    return {
        "orders": len(orders),
        "kept_orders": len(kept),
        "revenue": revenue,
        "order_dates": len({row["order_date"] for row in orders if row["id"] in kept}),
    }


def check_report_files(out_dir: Path, status: str) -> dict[str, Any]:
    report: dict[str, Any] = read_json(out_dir / "report.json")
    jsonschema.validate(report, read_json(SCHEMA))
    assert report["status"] == status
    run_dir = out_dir / report["project"] / report["env"] / "runs" / report["run_id"]
    for name in ("report.json", "summary.md", "junit.xml", "manifest.json", "run_results.json"):
        assert (run_dir / name).is_file(), name
    assert read_json(run_dir / "report.json") == report
    return report


def check_junit(out_dir: Path, report: dict[str, Any]) -> ET.Element:
    root = ET.parse(out_dir / "junit.xml").getroot()
    cases = {case.get("name") for case in root.iter("testcase")}
    assert {node["unique_id"] for node in report["nodes"]} <= cases
    assert int(root.get("tests", "0")) == len(list(root.iter("testcase")))
    return root


def check_demo_success(out_dir: Path, report: dict[str, Any]) -> None:
    assert [(p["name"], p["status"]) for p in report["phases"]] == PHASES_OK
    assert report["exit_code"] == 0
    assert Counter((n["phase"], n["resource_type"]) for n in report["nodes"]) == DEMO_NODES
    assert {n["outcome"] for n in report["nodes"]} == {"ok"}
    # The build phase excluded seeds: the seed phase had loaded them.
    build = next(p for p in report["phases"] if p["name"] == "build")
    assert "--exclude-resource-type" in build["dbt_args"]

    root = check_junit(out_dir, report)
    assert (root.get("failures"), root.get("errors")) == ("0", "0")

    run_dir = out_dir / "demo" / report["env"] / "runs" / report["run_id"]
    for name in ("sources.json", "catalog.json", "dbt.log", "static_index.html"):
        assert (run_dir / name).is_file(), name
    # run_results.json is the build's, not the docs phase's compile results.
    run_results = read_json(run_dir / "run_results.json")
    assert "model.demo.customers" in {r["unique_id"] for r in run_results["results"]}
    assert run_results["args"]["which"] == "build"
    sources = read_json(run_dir / "sources.json")
    assert [r["status"] for r in sources["results"]] == ["pass"]

    docs = out_dir / "demo" / report["env"] / "docs"
    # The build compiled every node into the shared manifest: docs did not compile again,
    # and the published manifest still carries every model's compiled SQL.
    docs_phase = next(p for p in report["phases"] if p["name"] == "docs")
    assert "--no-compile" in docs_phase["dbt_args"]
    manifest = read_json(docs / "manifest.json")
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) == 6 and all(n["compiled_code"] for n in models)
    catalog = read_json(docs / "catalog.json")
    assert "model.demo.customers" in catalog["nodes"]
    assert (docs / "index.html").stat().st_size > 10_000
    assert "model.demo.daily_revenue" in (docs / "static_index.html").read_text()
    assert report["links"]["docs_url"] == (docs / "index.html").as_uri()
    assert report["links"]["run_url"] == run_dir.as_uri()


def test_demo_job_on_duckdb(env: dict[str, str], out_dir: Path, tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    env["GITHUB_STEP_SUMMARY"] = str(summary)
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    report = check_report_files(out_dir, "success")
    check_demo_success(out_dir, report)
    assert report["adapter"] == "duckdb"
    assert "demo/dev full: success" in summary.read_text()

    expected = expected_figures()
    with duckdb.connect(env["DBT_RUNNER_WAREHOUSE__PATH"], read_only=True) as con:
        assert con.execute("select count(*) from main.orders").fetchone() == (expected["orders"],)
        totals = con.execute(
            "select sum(order_count), sum(lifetime_value) from main.customers"
        ).fetchone()
        assert totals == (expected["kept_orders"], expected["revenue"])
        daily = con.execute("select count(*), sum(revenue) from main.daily_revenue").fetchone()
        assert daily == (expected["order_dates"], expected["revenue"])
        assert con.execute("select count(*) from main.customers_snapshot").fetchone() == (12,)

    # A second run: the incremental model and the snapshot see their own earlier state.
    second = run_cli("run", "--run-id", "second-run", env=env)
    assert second.returncode == 0, second.stdout[-4000:]
    assert read_json(out_dir / "report.json")["run_id"] == "second-run"
    with duckdb.connect(env["DBT_RUNNER_WAREHOUSE__PATH"], read_only=True) as con:
        daily = con.execute("select count(*), sum(revenue) from main.daily_revenue").fetchone()
        assert daily == (expected["order_dates"], expected["revenue"])
        assert con.execute("select count(*) from main.customers_snapshot").fetchone() == (12,)
    # Both runs are kept; the docs folder holds one site and the latest run's page.
    runs = sorted(p.name for p in (out_dir / "demo" / "dev" / "runs").iterdir())
    assert len(runs) == 2 and "second-run" in runs
    docs = out_dir / "demo" / "dev" / "docs"
    assert sorted(p.name for p in docs.iterdir()) == [
        "catalog.json",
        "index.html",
        "manifest.json",
        "report.html",
        "static_index.html",
    ]
    assert "second-run" in (docs / "report.html").read_text()


def test_demo_job_on_postgres(
    env: dict[str, str], out_dir: Path, postgres: Postgres, request: pytest.FixtureRequest
) -> None:
    schema = "demo_" + request.node.name.lower().replace("test_", "")[:20]
    env.update(postgres.warehouse_env(schema), DBT_RUNNER_ENV="prod")
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    report = check_report_files(out_dir, "success")
    check_demo_success(out_dir, report)
    assert (report["adapter"], report["env"]) == ("postgres", "prod")
    # The rendered profile read the password from the environment: never in dbt's log.
    run_dir = out_dir / "demo" / "prod" / "runs" / report["run_id"]
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert postgres.password not in path.read_text(errors="replace"), path
    assert postgres.password not in result.stdout + result.stderr

    expected = expected_figures()
    tables = {
        name
        for (name,) in postgres.query(
            "select table_name from information_schema.tables where table_schema = %s", schema
        )
    }
    assert {"orders", "customers", "daily_revenue", "stg_orders", "customers_snapshot"} <= tables
    (orders, revenue) = postgres.query(
        f"select sum(order_count), sum(lifetime_value) from {schema}.customers"
    )[0]
    assert (orders, revenue) == (expected["kept_orders"], expected["revenue"])


def test_a_project_that_travels_as_an_archive_on_s3(
    env: dict[str, str], moto: Moto, demo_project: Path, tmp_path: Path
) -> None:
    """The caller packs its project to S3; a run given only the URL (no project folder:
    its working directory holds none) fetches it, checks the digest, and builds it. A
    second run of the same code reads nothing from S3."""
    (demo_project / "models" / "marts" / "from_the_archive.sql").write_text("select 7 as seven")
    data = pack_project(demo_project)
    bucket = f"projects-{uuid.uuid4().hex[:8]}"
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"dbt/{archive_name(data)}", Body=data)
    job = {k: v for k, v in env.items() if k != "DBT_RUNNER_PROJECT_DIR"} | moto.env
    job["DBT_RUNNER_PROJECT_URL"] = f"s3://{bucket}/dbt/{archive_name(data)}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("run", env=job, cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    with duckdb.connect(env["DBT_RUNNER_WAREHOUSE__PATH"], read_only=True) as db:
        assert db.execute("select seven from from_the_archive").fetchall() == [(7,)]
    s3.delete_object(Bucket=bucket, Key=f"dbt/{archive_name(data)}")
    again = run_cli(
        "run", env=job | {"DBT_RUNNER_JOB": "custom", "DBT_RUNNER_PHASES": "build"}, cwd=elsewhere
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    tampered = job | {"DBT_RUNNER_PROJECT_URL": f"s3://{bucket}/dbt/{'0' * 64}.tar.gz"}
    missing = run_cli("run", env=tampered, cwd=elsewhere)
    assert missing.returncode == 4
    assert "no such archive; pack and upload it first" in missing.stderr
