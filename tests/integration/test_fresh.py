"""Source-aware builds (DBT_RUNNER_JOB=fresh): real dbt on DuckDB (a generated project
of three sources) and on PostgreSQL with the state on S3 (the demo)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from benchmarks.project import generate
from tests.support import Moto, Postgres, clean_env, read_json, read_report, run_cli


def built_models(data: dict[str, Any]) -> set[str]:
    return {
        n["unique_id"]
        for n in data["nodes"]
        if n["phase"] == "build" and n["resource_type"] == "model" and n["outcome"] != "skipped"
    }


def downstream(manifest: dict[str, Any], source: str) -> set[str]:
    """Every model that reads `source`, directly or not (from dbt's own child map)."""
    found, pending = set(), [source]
    while pending:
        for child in manifest["child_map"].get(pending.pop(), []):
            if child.startswith("model.") and child not in found:
                found.add(child)
                pending.append(child)
    return found


class Project:
    """The generated project on DuckDB, with its state and artifacts in tmp folders."""

    def __init__(self, root: Path) -> None:
        self.dir = generate(root / "project", models=24, rows=100, sources=3)
        self.database = root / "warehouse.duckdb"
        self.out = root / "out"
        self.state = root / "state"
        self.env = clean_env(
            DBT_RUNNER_PROJECT_DIR=str(self.dir),
            DBT_RUNNER_WORK_DIR=str(root / "work"),
            DBT_RUNNER_ARTIFACTS_URL=str(self.out),
            DBT_RUNNER_STATE_URL=str(self.state),
            DBT_RUNNER_WAREHOUSE__PATH=str(self.database),
        )

    def run(self, *args: str, code: int = 0) -> dict[str, Any]:
        result = run_cli("run", *args, env=self.env)
        assert result.returncode == code, result.stdout[-3000:] + result.stderr
        return read_report(self.out)

    def fresh(self, code: int = 0) -> dict[str, Any]:
        return self.run("--job", "fresh", code=code)

    def manifest(self, data: dict[str, Any]) -> dict[str, Any]:
        path = self.out / "bench" / "dev" / "runs" / data["run_id"] / "manifest.json"
        manifest: dict[str, Any] = read_json(path)
        return manifest

    def mark(self) -> None:
        """Comment every model's table: a table dbt rebuilds loses its comment."""
        with duckdb.connect(str(self.database)) as con:
            names = con.execute(
                "select table_name from duckdb_tables() where schema_name = 'main' "
                "and table_name not like 'seed_%'"
            ).fetchall()
            for (name,) in names:
                con.execute(f"comment on table main.{name} is 'before'")

    def rebuilt(self) -> set[str]:
        with duckdb.connect(str(self.database), read_only=True) as con:
            rows = con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'main' "
                "and table_name not like 'seed_%'"
            ).fetchall()
        return {f"model.bench.{name}" for name, comment in rows if comment != "before"}

    def new_rows(self, seed: int) -> None:
        """A loader lands rows in a source: its max(loaded_at) moves on."""
        with duckdb.connect(str(self.database)) as con:
            con.execute(f"insert into main.seed_{seed} values (9999, 1, 'a', now()::timestamp)")

    def configure_source(self, index: int, config: dict[str, Any] | None) -> None:
        path = self.dir / "models" / "staging" / "_sources.yml"
        data = yaml.safe_load(path.read_text())
        table = data["sources"][0]["tables"][index]
        table.pop("config", None)
        if config is not None:
            table["config"] = config
        path.write_text(yaml.safe_dump(data))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    built = Project(tmp_path)
    built.run()  # the daily full build
    first = built.fresh()  # no sources.json yet: everything, then it is kept
    assert first["state"]["mode"] == "full" and "keeps no sources.json" in first["state"]["reason"]
    yield built


def test_new_data_in_one_source_rebuilds_exactly_its_part(project: Project) -> None:
    project.mark()
    project.new_rows(1)
    data = project.fresh()
    expected = downstream(project.manifest(data), "source.bench.raw.seed_1")
    assert expected and built_models(data) == expected
    fresh = data["fresh"]
    assert fresh["new_data"] == ["source.bench.raw.seed_1"] and fresh["assumed"] == {}
    assert (fresh["models_built"], fresh["models_skipped"]) == (len(expected), 24 - len(expected))
    assert fresh["model_seconds_skipped"] > 0
    assert "new data in `raw.seed_1`" in (project.out / "summary.md").read_text()
    assert project.rebuilt() == expected  # in the warehouse: that part, and no other table


def test_nothing_new_builds_nothing(project: Project) -> None:
    data = project.fresh()
    assert built_models(data) == set() and data["status"] == "success"
    assert (data["fresh"]["models_built"], data["fresh"]["new_data"]) == (0, [])
    assert data["state"]["promoted"] is True


def test_new_data_and_a_code_change_build_both_parts(project: Project) -> None:
    project.new_rows(0)
    changed = sorted((project.dir / "models" / "layers").glob("m_*.sql"))
    model = next(path for path in changed if int(path.stem[2:]) % 3 == 2)  # source 2's part
    model.write_text(model.read_text() + "-- a change\n")
    data = project.fresh()
    manifest = project.manifest(data)
    expected = downstream(manifest, "source.bench.raw.seed_0")
    assert f"model.bench.{model.stem}" in built_models(data)
    assert expected < built_models(data)


@pytest.mark.parametrize(
    ("config", "why"),
    [
        (None, "no freshness rule"),
        (
            {
                "loaded_at_field": "no_such_column",
                "freshness": {"warn_after": {"count": 1, "period": "day"}},
            },
            "its freshness query failed",
        ),
    ],
)
def test_a_source_dbt_cannot_judge_counts_as_new(project: Project, config: Any, why: str) -> None:
    project.configure_source(2, config)
    data = project.fresh()
    assert why in data["fresh"]["assumed"]["source.bench.raw.seed_2"]
    expected = downstream(project.manifest(data), "source.bench.raw.seed_2")
    assert expected <= built_models(data)  # never skipped


def test_a_failed_fresh_run_keeps_the_previous_sources(project: Project) -> None:
    project.new_rows(1)
    part = downstream(project.manifest(read_report(project.out)), "source.bench.raw.seed_1")
    layer = max(uid for uid in part if ".m_" in uid)  # a model of the layers, in that part
    victim = project.dir / "models" / "layers" / f"{layer.rsplit('.', 1)[1]}.sql"
    good = victim.read_text()
    victim.write_text("select no_such_column from nowhere\n")
    failed = project.fresh(code=1)
    assert failed["state"]["promoted"] is False
    victim.write_text(good)
    again = project.fresh()
    assert "source.bench.raw.seed_1" in again["fresh"]["new_data"]  # still new
    assert part <= built_models(again)


def test_build_after_leaves_recent_models_and_owes_their_data(project: Project) -> None:
    project.new_rows(1)
    project.env["DBT_RUNNER_FRESH__BUILD_AFTER"] = "1h"
    waited = project.fresh()
    assert built_models(waited) == set()  # every model was built minutes ago
    assert waited["fresh"]["too_soon"] and waited["fresh"]["held_back"] == [
        "source.bench.raw.seed_1"
    ]
    del project.env["DBT_RUNNER_FRESH__BUILD_AFTER"]
    later = project.fresh()
    assert "source.bench.raw.seed_1" in later["fresh"]["new_data"]  # the data was still owed
    assert downstream(project.manifest(later), "source.bench.raw.seed_1") == built_models(later)


def test_fresh_on_postgres_with_state_on_s3(
    env: dict[str, str], out_dir: Path, postgres: Postgres, moto: Moto
) -> None:
    bucket = "fresh-" + uuid.uuid4().hex[:8]
    moto.client("s3").create_bucket(Bucket=bucket)
    schema = "fresh_" + uuid.uuid4().hex[:6]
    env |= (
        moto.env | postgres.warehouse_env(schema) | {"DBT_RUNNER_STATE_URL": f"s3://{bucket}/state"}
    )
    assert run_cli("run", env=env).returncode == 0
    assert run_cli("run", "--job", "fresh", env=env).returncode == 0  # keeps sources.json
    postgres.query(
        f"insert into {schema}.raw_payments select id + 1000, order_id, payment_method,"
        f" amount_cents, now() from {schema}.raw_payments limit 1"
    )
    result = run_cli("run", "--job", "fresh", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    data = read_report(out_dir)
    assert data["fresh"]["new_data"] == ["source.demo.raw.payments"]
    names = {uid.rsplit(".", 1)[1] for uid in built_models(data)}
    assert names == {"stg_payments", "orders", "customers", "daily_revenue"}
    sources = moto.client("s3").get_object(
        Bucket=bucket, Key=f"state/demo/dev/state/runs/{data['run_id']}/sources.json"
    )
    assert (
        json.loads(sources["Body"].read())["results"][0]["unique_id"] == "source.demo.raw.payments"
    )
