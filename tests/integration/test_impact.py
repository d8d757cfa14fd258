"""What a pull request does to the data: the impact a pull-request run reports, against
what the test computes itself with SQL on both schemas (PostgreSQL and DuckDB), its
bounds, its gate, and the pull request's comment through a local GitHub API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pytest_httpserver import HTTPServer

from tests.fake_github import PR, REPOSITORY, TOKEN, FakeGitHub
from tests.support import Postgres, free_port, read_report, run_cli, running_queries

# Every descendant of the edits is built and compared (these tests are about the
# comparison; test_children.py has a pull request build only what its change reaches).
ALL_CHILDREN = {"DBT_RUNNER_SLIM__CHILDREN": "all"}


@dataclass
class Warehouse:
    """Where the test reads both schemas, as the runner's env names them."""

    query: Callable[[str], list[tuple[Any, ...]]]
    prod_env: dict[str, str]
    pr_env: dict[str, str]
    prod: str  # production's schema
    pr: str  # the pull request's schema


def duckdb_warehouse(env: dict[str, str]) -> Warehouse:
    path = env["DBT_RUNNER_WAREHOUSE__PATH"]

    def query(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(path) as connection:  # the runner has exited
            return connection.execute(sql).fetchall()

    pr_env = env | {"DBT_RUNNER_ENV": "ci", "DBT_RUNNER_VARS": json.dumps({"raw_schema": "main"})}
    pr_env |= ALL_CHILDREN
    return Warehouse(query, env | {"DBT_RUNNER_ENV": "prod"}, pr_env, "main", f"main_pr_{PR}")


def postgres_warehouse(env: dict[str, str], postgres: Postgres) -> Warehouse:
    suffix = uuid.uuid4().hex[:6]
    prod_env = env | postgres.warehouse_env(f"prod_{suffix}") | {"DBT_RUNNER_ENV": "prod"}
    pr_env = (
        env
        | postgres.warehouse_env(f"ci_{suffix}")
        | {"DBT_RUNNER_ENV": "ci", "DBT_RUNNER_VARS": json.dumps({"raw_schema": f"prod_{suffix}"})}
        | ALL_CHILDREN
    )
    return Warehouse(postgres.query, prod_env, pr_env, f"prod_{suffix}", f"ci_{suffix}_pr_{PR}")


@pytest.fixture(params=["postgres", "duckdb"])
def warehouse(
    request: pytest.FixtureRequest, env: dict[str, str], postgres: Postgres, tmp_path: Path
) -> Warehouse:
    env = env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    if request.param == "duckdb":
        return duckdb_warehouse(env)
    return postgres_warehouse(env, postgres)


def edit(project: Path, model: str, old: str, new: str) -> None:
    path = next(project.glob(f"models/**/{model}.sql"))
    text = path.read_text()
    assert old in text, f"{old!r} not in {model}"
    path.write_text(text.replace(old, new))


def add_model(project: Path, name: str, sql: str) -> None:
    (project / "models" / "marts" / f"{name}.sql").write_text(sql)


def production_then_pull_request(project: Path, warehouse: Warehouse) -> None:
    """Production built (with a model without a key, and one whose relation then goes
    missing); then the pull request's edits: a column added to orders, rows filtered out
    of customers, one value changed in stg_customers, a new model."""
    add_model(
        project,
        "status_counts",
        "select status, count(*) as orders\nfrom {{ ref('orders') }} group by status\n",
    )
    result = run_cli("run", env=warehouse.prod_env)
    assert result.returncode == 0, result.stdout[-3000:]
    warehouse.query(f"drop table {warehouse.prod}.daily_revenue")
    edit(project, "orders", "o.status,", "o.status, 'v2' as model_version,")
    edit(
        project,
        "customers",
        "left join customer_orders as co on co.customer_id = c.customer_id",
        "left join customer_orders as co on co.customer_id = c.customer_id\n"
        "where c.customer_id not in (3, 7)",
    )
    edit(
        project,
        "stg_customers",
        "    first_name,",
        "    case when id = 5 then 'Grace' else first_name end as first_name,",
    )
    add_model(project, "order_days", "select distinct order_date from {{ ref('orders') }}\n")


def columns(warehouse: Warehouse, schema: str, table: str) -> dict[str, str]:
    rows = warehouse.query(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}'"
    )
    return {name: kind for name, kind in rows}


def count(warehouse: Warehouse, relation: str) -> int:
    [(n,)] = warehouse.query(f"select count(*) from {relation}")
    return int(n)


def expected_by_key(warehouse: Warehouse, table: str, key: str) -> dict[str, Any]:
    """Rows matched by key, computed here with plain SQL on both schemas."""
    prod, pr = f"{warehouse.prod}.{table}", f"{warehouse.pr}.{table}"
    shared = set(columns(warehouse, warehouse.prod, table)) & set(
        columns(warehouse, warehouse.pr, table)
    )
    shared.discard(key)

    def keys(sql: str) -> list[str]:
        return sorted(str(k) for (k,) in warehouse.query(sql))

    only_prod = keys(f"select {key} from {prod} except select {key} from {pr}")
    only_pr = keys(f"select {key} from {pr} except select {key} from {prod}")
    per_column = {}
    for column in sorted(shared):
        differs = keys(
            f"select p.{key} from {prod} p join {pr} r on p.{key} = r.{key} "
            f"where p.{column} is distinct from r.{column}"
        )
        if differs:
            per_column[column] = len(differs)
    differ = " or ".join(f"p.{c} is distinct from r.{c}" for c in sorted(shared)) or "false"
    changed = keys(f"select p.{key} from {prod} p join {pr} r on p.{key} = r.{key} where {differ}")
    return {
        "key": [key],
        "only_in_production": len(only_prod),
        "only_in_pr": len(only_pr),
        "changed": len(changed),
        "changed_columns": per_column,
        "examples": {
            kind: found[:5]
            for kind, found in (
                ("only_in_production", only_prod),
                ("only_in_pr", only_pr),
                ("changed", changed),
            )
            if found
        },
    }


def test_the_impact_is_what_sql_on_both_schemas_says(
    warehouse: Warehouse, demo_project: Path, out_dir: Path
) -> None:
    production_then_pull_request(demo_project, warehouse)
    result = run_cli("run", "--pr", PR, env=warehouse.pr_env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_report(out_dir)
    impact = {model["name"]: model for model in report["impact"]["models"]}
    assert set(impact) == {
        "stg_customers",
        "orders",
        "customers",
        "daily_revenue",
        "status_counts",
        "order_days",
    }  # what the run built: the edited models and what they feed
    assert [p["status"] for p in report["phases"] if p["name"] == "impact"] == ["success"]

    for name, key in (
        ("stg_customers", "customer_id"),
        ("orders", "order_id"),
        ("customers", "customer_id"),
    ):
        model = impact[name]
        prod_columns = columns(warehouse, warehouse.prod, name)
        pr_columns = columns(warehouse, warehouse.pr, name)
        assert model["status"] == "compared" and model["modified"] is True
        assert {c["name"] for c in model["added"]} == set(pr_columns) - set(prod_columns)
        assert {c["name"] for c in model["removed"]} == set(prod_columns) - set(pr_columns)
        assert model["rows_production"] == count(warehouse, f"{warehouse.prod}.{name}")
        assert model["rows_pr"] == count(warehouse, f"{warehouse.pr}.{name}")
        assert model["by_key"] == expected_by_key(warehouse, name, key), name

    # What each edit did, said plainly (and the test's SQL agrees, above).
    assert [c["name"] for c in impact["orders"]["added"]] == ["model_version"]
    assert impact["customers"]["rows_difference"] == -2
    assert impact["customers"]["by_key"]["examples"]["only_in_production"] == ["3", "7"]
    assert impact["stg_customers"]["by_key"]["changed_columns"] == {"first_name": 1}
    assert impact["stg_customers"]["by_key"]["examples"] == {"changed": ["5"]}

    # A model without a key: counts only, and why.
    assert impact["status_counts"]["by_key"] is None
    assert "no key" in impact["status_counts"]["no_key"]
    assert impact["status_counts"]["rows_pr"] == count(warehouse, f"{warehouse.pr}.status_counts")
    # New in the pull request, and missing from production: said, not errors.
    assert impact["order_days"]["status"] == "new"
    assert impact["order_days"]["rows_pr"] == count(warehouse, f"{warehouse.pr}.order_days")
    assert impact["daily_revenue"]["status"] == "missing_in_production"
    assert report["impact"]["queries"] > 0

    # Where a reviewer reads it.
    summary = (out_dir / "summary.md").read_text()
    assert "### Impact on the data: 4 model(s) compared with production" in summary
    assert "| `customers` (edited) | — | 12 → 10 (-2, -16.7%) |" in summary
    assert "No difference: `orders`" not in summary  # a column was added: a difference
    page = (out_dir / "report.html").read_text()
    assert '<section id="impact">' in page and "<code>order_days</code>" in page


def test_rows_without_a_key_and_retyped_values_are_compared_not_guessed(
    warehouse: Warehouse, demo_project: Path, out_dir: Path
) -> None:
    """A model without a key whose two rows both changed, its row count the same, was
    "No difference"; a column cast from numeric to double precision counted every row
    as changed, though no value did."""
    double = "double" if warehouse.prod == "main" else "double precision"
    add_model(demo_project, "pairs", "select 1 as a, 'x' as b union all select 2 as a, 'y' as b\n")
    add_model(
        demo_project,
        "amounts",
        "{{ config(meta={'primary_key': 'order_id'}) }}\n"
        "select order_id, cast(order_id * 1.25 as numeric(10, 2)) as amount\n"
        "from {{ ref('orders') }}\n",
    )
    result = run_cli("run", env=warehouse.prod_env)
    assert result.returncode == 0, result.stdout[-3000:]
    edit(
        demo_project,
        "pairs",
        "'x' as b union all select 2 as a, 'y'",
        "'x2' as b union all select 2 as a, 'y2'",
    )
    edit(demo_project, "amounts", "as numeric(10, 2)", f"as {double}")
    result = run_cli("run", "--pr", PR, env=warehouse.pr_env)
    assert result.returncode == 0, result.stdout[-3000:]
    impact = {m["name"]: m for m in read_report(out_dir)["impact"]["models"]}
    prod, pr = warehouse.prod, warehouse.pr

    def scalar(sql: str) -> int:
        [(n,)] = warehouse.query(sql)
        return int(n)

    pairs = impact["pairs"]
    assert pairs["by_key"] is None and pairs["rows_difference"] == 0
    assert pairs["by_content"] == {
        "columns": ["a", "b"],
        "only_in_production": scalar(
            f"select count(*) from (select a, b from {prod}.pairs except all "
            f"select a, b from {pr}.pairs) x"
        ),
        "only_in_pr": scalar(
            f"select count(*) from (select a, b from {pr}.pairs except all "
            f"select a, b from {prod}.pairs) x"
        ),
    }
    assert pairs["by_content"]["only_in_production"] == 2

    amounts = impact["amounts"]
    as_text = scalar(
        f"select count(*) from {prod}.amounts p join {pr}.amounts r using (order_id) "
        "where cast(p.amount as varchar) <> cast(r.amount as varchar)"
    )
    as_values = scalar(
        f"select count(*) from {prod}.amounts p join {pr}.amounts r using (order_id) "
        f"where cast(p.amount as {double}) <> r.amount"
    )
    assert as_text > 0 and as_values == 0  # the case: texts differ, values do not
    assert [t["name"] for t in amounts["type_changed"]] == ["amount"]
    assert amounts["by_key"]["changed"] == as_values and amounts["by_key"]["changed_columns"] == {}
    assert amounts["compared_as"] == {"amount": double}

    summary = (out_dir / "summary.md").read_text()
    unchanged = summary.split("No difference")[1] if "No difference" in summary else ""
    assert "`pairs`" not in unchanged and "| `pairs` (edited)" in summary
    assert "2 row(s) only in production; 2 row(s) only in the PR" in summary
    assert f"values compared as {double}" in summary


def test_bounds_and_the_gate(
    env: dict[str, str], postgres: Postgres, demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """Over the limit of models, over the time limit (its query cancelled), and the gate."""
    warehouse = postgres_warehouse(
        env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}, postgres
    )
    # A view that takes 3 s to read: its comparison will not finish within 1 s.
    add_model(
        demo_project,
        "slow_orders",
        "{{ config(materialized='view') }}\n"
        "select o.* from {{ ref('orders') }} o, pg_sleep(3) as s\n",
    )
    production_then_pull_request(demo_project, warehouse)
    pr_env = warehouse.pr_env | {"DBT_RUNNER_PR_IMPACT__TIMEOUT_S": "1"}

    result = run_cli("run", "--pr", PR, env=pr_env)
    assert result.returncode == 0, result.stdout[-3000:]
    impact = {m["name"]: m for m in read_report(out_dir)["impact"]["models"]}
    slow = impact["slow_orders"]
    assert slow["status"] == "not_compared"
    assert slow["reason"] == "took longer than 1 s (DBT_RUNNER_PR_IMPACT__TIMEOUT_S)"
    assert slow["seconds"] < 3  # cancelled, not waited for
    assert running_queries(postgres, "pg_sleep") == []
    # The comparisons after it still ran.
    assert impact["customers"]["status"] == "compared"

    # At most two models compared: the edited ones first, the rest said as over it.
    result = run_cli("run", "--pr", PR, env=pr_env | {"DBT_RUNNER_PR_IMPACT__MAX_MODELS": "2"})
    assert result.returncode == 0, result.stdout[-3000:]
    models = read_report(out_dir)["impact"]["models"]
    compared = [m for m in models if m["status"] == "compared"]
    assert len(compared) == 2 and all(m["modified"] for m in compared)
    over = [m for m in models if m["status"] == "not_compared"]
    assert {m["reason"] for m in over} == {
        "over the limit of 2 models (DBT_RUNNER_PR_IMPACT__MAX_MODELS)"
    }
    assert len(over) == 5

    # The gate: customers loses 2 of its 12 rows (16.7 %).
    gate = {"DBT_RUNNER_PR_IMPACT__MAX_ROW_LOSS_PCT": "10", "DBT_RUNNER_PR_IMPACT__TIMEOUT_S": "60"}
    result = run_cli("run", "--pr", PR, env=pr_env | gate)
    assert result.returncode == 1, result.stdout[-3000:]
    report = read_report(out_dir)
    assert report["status"] == "failed"
    [phase] = [p for p in report["phases"] if p["name"] == "impact"]
    assert (phase["status"], phase["advisory"]) == ("failed", False)
    assert "more than 10% of the rows of customers -16.7%" in report["impact"]["gate"]
    assert "Gate:" in (out_dir / "summary.md").read_text()
    result = run_cli(
        "run", "--pr", PR, env=pr_env | gate | {"DBT_RUNNER_PR_IMPACT__MAX_ROW_LOSS_PCT": "20"}
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_pull_request_comment_is_written_once_and_updated(
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    tmp_path: Path,
    httpserver: HTTPServer,
) -> None:
    warehouse = duckdb_warehouse(env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")})
    production_then_pull_request(demo_project, warehouse)
    github = FakeGitHub(httpserver)
    # Someone else's comment on the pull request is left alone.
    github.comments.append(github._comment(7, "LGTM"))
    commenting = warehouse.pr_env | {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_API_URL": httpserver.url_for("/").rstrip("/"),
    }
    result = run_cli("run", "--pr", PR, env=commenting)
    assert result.returncode == 0, result.stdout[-3000:]
    httpserver.check_assertions()
    assert [c["id"] for c in github.comments] == [7, 100]
    first = github.comments[1]["body"]
    assert first.startswith("<!-- dbt-runner impact: demo/ci -->")
    assert "| `customers` (edited) | — | 12 → 10 (-2, -16.7%) |" in first
    report = read_report(out_dir)
    assert report["pr"]["comment_url"].endswith("#issuecomment-100")

    # The next push: the same comment, updated in place.
    edit(demo_project, "customers", "where c.customer_id not in (3, 7)", "where c.customer_id <> 3")
    result = run_cli("run", "--pr", PR, env=commenting)
    assert result.returncode == 0, result.stdout[-3000:]
    httpserver.check_assertions()
    assert [c["id"] for c in github.comments] == [7, 100]
    assert github.comments[0]["body"] == "LGTM"
    assert "12 → 11 (-1, -8.3%)" in github.comments[1]["body"]
    assert [method for method, _ in github.calls] == ["GET", "POST", "GET", "PATCH"]

    # GitHub refusing is a warning; no token is no comment and nothing said.
    httpserver.clear()
    httpserver.expect_request(f"/repos/{REPOSITORY}/issues/{PR}/comments").respond_with_json(
        {"message": "Resource not accessible by integration"}, status=403
    )
    result = run_cli("run", "--pr", PR, env=commenting)
    assert result.returncode == 0, result.stdout[-3000:]
    warnings = read_report(out_dir)["warnings"]
    assert "comment failed: GitHub answered 403: Resource not accessible by integration" in warnings
    # GitHub out of reach: a network failure, named as one (not a bug in the runner).
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_cli("run", "--pr", PR, env=commenting | {"GITHUB_API_URL": closed})
    assert result.returncode == 0, result.stdout[-3000:]
    [said] = [w for w in read_report(out_dir)["warnings"] if w.startswith("comment failed")]
    assert f"GitHub's API at {closed} could not be reached" in said, said
    assert "unexpected" not in said and "please report" not in said
    httpserver.clear()
    result = run_cli("run", "--pr", PR, env=warehouse.pr_env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_report(out_dir)
    assert report["pr"]["comment_url"] is None
    assert not [w for w in report["warnings"] if "comment" in w]
    assert httpserver.log == []
