"""Slim jobs: build what changed, defer the rest to the last good run, promote only
good state. Real dbt on DuckDB and PostgreSQL; state on file:// and on S3 (moto)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dbt_runner.report.model import RunReport
from dbt_runner.state.store import StateStore
from dbt_runner.storage import FileStorage
from tests.support import Moto, Postgres, latest_state, read_json, read_report, run_cli

MODELS = {"stg_customers", "stg_orders", "stg_payments", "orders", "customers", "daily_revenue"}


def built_models(state: dict[str, Any]) -> set[str]:
    return {uid.split(".")[-1] for uid in state["built"] if uid.startswith("model.")}


def mark_relations(path: str) -> None:
    """Comment every table and view: a relation dbt rebuilds loses its comment."""
    with duckdb.connect(path) as con:
        for name in MODELS:
            kind = con.execute(
                "select table_type from information_schema.tables where table_name = ?", [name]
            ).fetchone()
            keyword = "VIEW" if kind == ("VIEW",) else "TABLE"
            con.execute(f"COMMENT ON {keyword} main.{name} IS 'before the slim run'")


def unmarked_relations(path: str) -> set[str]:
    with duckdb.connect(path, read_only=True) as con:
        rows = con.execute(
            "select table_name, comment from duckdb_tables() where schema_name = 'main' "
            "union all select view_name, comment from duckdb_views() "
            "where schema_name = 'main' and not internal"
        ).fetchall()
    return {name for name, comment in rows if name in MODELS and comment != "before the slim run"}


@pytest.fixture
def slim_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return env | {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}


def test_slim_builds_the_change_and_its_children_on_duckdb(
    slim_env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    first = run_cli("run", env=slim_env)
    assert first.returncode == 0, first.stdout[-3000:]
    full_run = read_report(out_dir)
    assert full_run["state"]["promoted"] is True
    assert latest_state(tmp_path / "state")["run_id"] == full_run["run_id"]
    mark_relations(slim_env["DBT_RUNNER_WAREHOUSE__PATH"])

    # A real change to one model with no children but its tests.
    customers = demo_project / "models" / "marts" / "customers.sql"
    customers.write_text(customers.read_text().replace("c.last_name,", "c.last_name, 1 as tier,"))
    slim = run_cli("run", "--job", "slim", env=slim_env)
    assert slim.returncode == 0, slim.stdout[-3000:]
    state = read_report(out_dir)["state"]
    assert (state["mode"], state["deferred_to"], state["warm_parse"]) == (
        "slim",
        full_run["run_id"],
        True,
    )
    assert built_models(state) == {"customers"}
    assert set(state["deferred"]) == {"model.demo.stg_customers", "model.demo.orders"}
    assert "Unable to do partial parsing" not in slim.stdout  # the parse cache was used

    # In the warehouse: only customers was rebuilt, every other relation is untouched.
    assert unmarked_relations(slim_env["DBT_RUNNER_WAREHOUSE__PATH"]) == {"customers"}
    with duckdb.connect(slim_env["DBT_RUNNER_WAREHOUSE__PATH"], read_only=True) as con:
        assert con.execute("select count(distinct tier) from main.customers").fetchone() == (1,)
    assert latest_state(tmp_path / "state")["run_id"] == read_report(out_dir)["run_id"]  # promoted


def test_ci_job_defers_to_production_on_postgres_with_state_on_s3(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, moto: Moto
) -> None:
    bucket = "state-" + uuid.uuid4().hex[:8]
    moto.client("s3").create_bucket(Bucket=bucket)
    suffix = uuid.uuid4().hex[:6]
    prod_schema, ci_schema = f"prod_{suffix}", f"ci_{suffix}"
    base = env | moto.env | {"DBT_RUNNER_STATE_URL": f"s3://{bucket}/dbt-state"}
    prod = base | postgres.warehouse_env(prod_schema) | {"DBT_RUNNER_ENV": "prod"}
    assert run_cli("run", env=prod).returncode == 0
    prod_run = read_report(out_dir)["run_id"]
    oids = "select relname, oid from pg_class where relnamespace = %s::regnamespace"
    prod_before = dict(postgres.query(oids, prod_schema))

    orders = demo_project / "models" / "marts" / "orders.sql"
    changed = orders.read_text().replace("o.status,", "o.status, 'v2' as model_version,")
    # amount reaches customers and daily_revenue: they are built too, from orders in ci
    orders.write_text(changed.replace("coalesce(p.amount, 0) as", "coalesce(p.amount, 0) + 0 as"))
    ci = (
        base
        | postgres.warehouse_env(ci_schema)
        | {
            "DBT_RUNNER_ENV": "ci",
            "DBT_RUNNER_JOB": "slim",
            "DBT_RUNNER_SLIM__DEFER_ENV": "prod",
            # Raw data is production's: sources are read, never deferred.
            "DBT_RUNNER_VARS": json.dumps({"raw_schema": prod_schema}),
        }
    )
    result = run_cli("run", env=ci)
    assert result.returncode == 0, result.stdout[-3000:]
    ci_report = read_report(out_dir)
    state = ci_report["state"]
    assert (state["mode"], state["deferred_to"]) == ("slim", prod_run)
    assert built_models(state) == {"orders", "customers", "daily_revenue"}
    assert set(state["deferred"]) == {
        "model.demo.stg_orders",
        "model.demo.stg_payments",
        "model.demo.stg_customers",
    }

    # Only the change and its children exist in the CI schema, built from production's
    # unmodified parents (deferral), and production was not touched.
    ci_tables = {
        name
        for (name,) in postgres.query(
            "select table_name from information_schema.tables where table_schema = %s", ci_schema
        )
    }
    assert ci_tables == {"orders", "customers", "daily_revenue"}
    assert postgres.query(f"select count(*), min(model_version) from {ci_schema}.orders") == [
        (30, "v2")
    ]
    assert dict(postgres.query(oids, prod_schema)) == prod_before
    manifest = read_json(out_dir / "demo" / "ci" / "runs" / ci_report["run_id"] / "manifest.json")
    compiled = manifest["nodes"]["model.demo.orders"]["compiled_code"]
    assert f'"{prod_schema}"."stg_orders"' in compiled and ci_schema not in compiled
    # The CI schema does not hold what it read from production: no state for ci, and
    # production's pointer is unchanged.
    assert state["promoted"] is False
    assert "the job deferred to prod's state" in result.stdout
    listed = moto.client("s3").list_objects_v2(Bucket=bucket, Prefix="dbt-state/demo/ci/")
    ci_keys = [item["Key"] for item in listed.get("Contents", [])]
    assert not [key for key in ci_keys if key.endswith("latest.json") or "/runs/" in key]
    prod_pointer = json.loads(
        moto.client("s3")
        .get_object(Bucket=bucket, Key="dbt-state/demo/prod/state/latest.json")["Body"]
        .read()
    )
    assert prod_pointer["run_id"] == prod_run


def test_failed_slim_run_keeps_the_last_good_state(
    slim_env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    assert run_cli("run", env=slim_env).returncode == 0
    good = latest_state(tmp_path / "state")
    pointer = tmp_path / "state" / "demo" / "dev" / "state" / "latest.json"
    pointer_bytes = pointer.read_bytes()

    orders = demo_project / "models" / "marts" / "orders.sql"
    original = orders.read_text()
    orders.write_text(original.replace("o.status,", "o.no_such_column,"))
    failed = run_cli("run", "--job", "slim", env=slim_env)
    assert failed.returncode == 1
    assert read_report(out_dir)["state"]["promoted"] is False
    assert pointer.read_bytes() == pointer_bytes

    orders.write_text(original.replace("o.status,", "o.status, 2 as v,"))
    fixed = run_cli("run", "--job", "slim", env=slim_env)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert read_report(out_dir)["state"]["deferred_to"] == good["run_id"]  # still the last good one
    assert latest_state(tmp_path / "state")["run_id"] == read_report(out_dir)["run_id"]


def test_no_state_builds_everything_and_creates_state(
    slim_env: dict[str, str], out_dir: Path, tmp_path: Path
) -> None:
    result = run_cli("run", "--job", "slim", env=slim_env)
    assert result.returncode == 0, result.stdout[-3000:]
    state = read_report(out_dir)["state"]
    assert state["mode"] == "full" and "no state yet" in state["reason"]
    assert "no state yet" in result.stdout
    assert {
        n["name"] for n in read_report(out_dir)["nodes"] if n["resource_type"] == "model"
    } == MODELS
    assert latest_state(tmp_path / "state")["run_id"] == read_report(out_dir)["run_id"]


def corrupt_manifest(folder: Path, pointer: dict[str, Any]) -> str:
    path = folder / "runs" / pointer["run_id"] / "manifest.json"
    path.write_bytes(
        path.read_bytes().replace(b'"materialized": "table"', b'"materialized": "view"', 1)
    )
    return "does not match its checksum"


def other_project(folder: Path, pointer: dict[str, Any]) -> str:
    path = folder / "runs" / pointer["run_id"] / "manifest.json"
    data = path.read_bytes().replace(b'"project_name": "demo"', b'"project_name": "shop"')
    path.write_bytes(data)
    pointer["manifest_sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "latest.json").write_text(json.dumps(pointer))
    return "the state is project 'shop's"


def unreadable_pointer(folder: Path, pointer: dict[str, Any]) -> str:
    (folder / "latest.json").write_text('{"run_id": 42')
    return "latest.json is unreadable"


@pytest.mark.parametrize("damage", [corrupt_manifest, other_project, unreadable_pointer])
def test_bad_state_is_never_used_for_a_partial_build(
    damage: Any, slim_env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    assert run_cli("run", env=slim_env).returncode == 0
    folder = tmp_path / "state" / "demo" / "dev" / "state"
    problem = damage(folder, latest_state(tmp_path / "state"))
    (demo_project / "models" / "marts" / "customers.sql").write_text(
        (demo_project / "models" / "marts" / "customers.sql").read_text() + "\n-- changed\n"
    )
    result = run_cli("run", "--job", "slim", env=slim_env)
    assert result.returncode == 0, result.stdout[-3000:]
    state = read_report(out_dir)["state"]
    assert state["mode"] == "full" and problem in state["reason"], state["reason"]
    models = {n["name"] for n in read_report(out_dir)["nodes"] if n["resource_type"] == "model"}
    assert models == MODELS  # everything rebuilt, not a partial build on bad state
    assert (
        latest_state(tmp_path / "state")["run_id"] == read_report(out_dir)["run_id"]
    )  # and the state is good again


def test_retry_reruns_only_failed_and_skipped_nodes_with_the_same_state(
    slim_env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    assert run_cli("run", env=slim_env).returncode == 0
    full_run = read_report(out_dir)["run_id"]
    marts = demo_project / "models" / "marts"
    orders, customers = marts / "orders.sql", marts / "customers.sql"
    orders.write_text(orders.read_text().replace("o.status,", "o.status, 3 as v,"))
    good_customers = customers.read_text()
    customers.write_text(good_customers.replace("c.first_name,", "c.no_such_column,"))
    failed = run_cli("run", "--job", "slim", env=slim_env)
    assert failed.returncode == 1
    failed_report = read_report(out_dir)
    to_retry = {
        n["unique_id"] for n in failed_report["nodes"] if n["outcome"] in ("failed", "skipped")
    }
    assert "model.demo.customers" in to_retry and "model.demo.orders" not in to_retry

    customers.write_text(good_customers)
    retried = run_cli("retry", env=slim_env)
    assert retried.returncode == 0, retried.stdout[-3000:]
    retry_report = read_report(out_dir)
    assert (retry_report["job"], retry_report["retry_of"]) == ("retry", failed_report["run_id"])
    assert {n["unique_id"] for n in retry_report["nodes"]} == to_retry
    assert retry_report["state"]["deferred_to"] == full_run  # the same state as the slim run
    assert (
        latest_state(tmp_path / "state")["run_id"] == retry_report["run_id"]
    )  # a good run again: promoted

    nothing = run_cli("retry", env=slim_env)  # the last run succeeded
    assert nothing.returncode == 0 and "nothing to retry" in nothing.stdout
    assert read_report(out_dir)["phases"] == []


def test_retry_without_an_earlier_run(slim_env: dict[str, str]) -> None:
    result = run_cli("retry", env=slim_env)
    assert result.returncode == 3
    assert "no earlier run of demo/dev" in result.stderr and "--from-run" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--job", "custom", "--phases", "deps,seed"],
        ["--select", "+customers"],
        ["--exclude", "customers"],
    ],
)
def test_partial_runs_do_not_promote_state(
    args: list[str], slim_env: dict[str, str], out_dir: Path, tmp_path: Path
) -> None:
    """A run that did not build every node must not claim the warehouse holds its code."""
    result = run_cli("run", *args, env=slim_env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not (tmp_path / "state" / "demo" / "dev" / "state" / "latest.json").exists()
    assert "state not promoted" in result.stdout


def test_slim_needs_a_state_url(env: dict[str, str]) -> None:
    result = run_cli("run", "--job", "slim", env=env)
    assert result.returncode == 3
    assert "DBT_RUNNER_JOB=slim needs DBT_RUNNER_STATE_URL" in result.stderr


def test_racing_promotions_keep_the_newer_run(tmp_path: Path) -> None:
    """Of two jobs, the one that started later keeps the pointer, whoever finishes last."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text('{"metadata": {"project_name": "demo"}}')
    store = StateStore(FileStorage((tmp_path / "state").as_uri()), "demo", "prod")
    now = datetime.now(UTC)

    def run(run_id: str, started: datetime) -> RunReport:
        return RunReport(
            runner_version="1", env="prod", job="full", run_id=run_id, started_at=started
        )

    assert store.promote(run("newer", now), target, tmp_path) is True
    assert store.promote(run("older", now - timedelta(minutes=5)), target, tmp_path) is False
    pointer = store.latest()
    assert pointer is not None and pointer.run_id == "newer"
    # The older run's own state is still kept in full, for a retry of it.
    older = store.pointer_of("older")
    assert older is not None and older.run_id == "older"
