"""Slim jobs that build only the children a change can reach, proven against a full
rebuild (DBT_RUNNER_SLIM__CHILDREN=affected).

A project of about 60 models of varied shapes gets one change at a time. After each
slim job, a full build of the same code into a warehouse of its own is the oracle:
every model's columns and rows must be the same in both. Each change also says which
models the slim job builds, and those are a subset of dbt's own `state:modified+`.
"""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.support import (
    Postgres,
    Started,
    clean_env,
    read_json,
    run_cli,
    running_queries,
    wait_until,
)

# --- the project ------------------------------------------------------------------------

SEEDS = {
    "raw_orders": "id,customer_id,amount,status,order_date\n"
    + "\n".join(
        f"{i},{i % 7 + 1},{i * 3 % 50 + 1},{('paid', 'void', 'open')[i % 3]},"
        f"2026-01-{i % 28 + 1:02d}"
        for i in range(1, 41)
    ),
    "raw_customers": "id,name,region\n"
    + "\n".join(f"{i},name{i},{('north', 'south', 'North')[i % 3]}" for i in range(1, 9)),
    "raw_items": "order_id,sku,qty\n"
    + "\n".join(f"{i % 40 + 1},sku{i % 5},{i % 4 + 1}" for i in range(1, 61)),
}


def ref(name: str) -> str:
    return "{{ ref('" + name + "') }}"


def table(sql: str) -> str:
    return sql


def view(sql: str) -> str:
    return "{{ config(materialized='view') }}\n" + sql


MODELS: dict[str, str] = {
    # staging
    "stg_orders": view(
        f"select id as order_id, customer_id, amount, status, order_date from {ref('raw_orders')}"
    ),
    "stg_customers": view(f"select id as customer_id, name, region from {ref('raw_customers')}"),
    "stg_items": view(f"select order_id, sku, qty from {ref('raw_items')}"),
    # readers of stg_orders, one shape each
    "o_amounts": f"select order_id, amount * 2 as amount2 from {ref('stg_orders')}",
    "o_status": f"select order_id, status from {ref('stg_orders')} where status <> 'void'",
    "o_star": f"select * from {ref('stg_orders')}",
    "o_by_customer": f"select customer_id, sum(amount) as total, count(*) as n\n"
    f"from {ref('stg_orders')} group by customer_id",
    "o_distinct_status": f"select distinct status from {ref('stg_orders')}",
    "o_union_all": f"select order_id as id, amount from {ref('stg_orders')}\n"
    f"union all select order_id, qty from {ref('stg_items')}",
    "o_union": f"select customer_id as id from {ref('stg_orders')}\n"
    f"union select customer_id from {ref('stg_customers')}",
    "o_window": "select order_id, sum(amount) over (partition by customer_id order by order_id)"
    f" as running from {ref('stg_orders')}",
    "o_join_customer": f"select o.order_id, c.name from {ref('stg_orders')} o\n"
    f"join {ref('stg_customers')} c on o.customer_id = c.customer_id",
    "o_cte_import": f"with o as (select * from {ref('stg_orders')})\n"
    "select o.order_id, o.order_date from o",
    "o_view": view(f"select order_id, status from {ref('stg_orders')}"),
    "o_view_of_view": view(f"select order_id from {ref('o_view')}"),
    "o_incremental": "{{ config(materialized='incremental', unique_key='order_id', "
    "incremental_strategy='delete+insert') }}\n"
    f"select order_id, amount from {ref('stg_orders')}\n"
    "{% if is_incremental() %} where order_id > 0 {% endif %}",
    "o_ephemeral": "{{ config(materialized='ephemeral') }}\n"
    f"select order_id, amount, status from {ref('stg_orders')}",
    "o_from_ephemeral": f"select order_id, amount + 1 as a1 from {ref('o_ephemeral')}",
    "o_from_ephemeral_status": f"select order_id, status from {ref('o_ephemeral')}",
    "o_macro": f"select order_id, {{{{ cents('amount') }}}} as dollars from {ref('stg_orders')}",
    "c_macro": "select customer_id, {{ cents('total') }} as total_dollars"
    f" from {ref('o_by_customer')}",
    "o_scalar": f"select order_id, (select max(amount) from {ref('stg_orders')}) as top\n"
    f"from {ref('stg_orders')}",
    "o_in": f"select customer_id from {ref('stg_customers')}\n"
    f"where customer_id in (select customer_id from {ref('stg_orders')})",
    "o_agg_all": f"select count(*) as n, sum(amount) as total from {ref('stg_orders')}",
    "o_limit": f"select order_id from {ref('stg_orders')}\norder by amount desc, order_id limit 3",
    "o_where": f"select order_id from {ref('stg_orders')} where amount > 20",
    "o_rank": "select order_id, rank() over (partition by status order by order_id) as r"
    f" from {ref('stg_orders')}",
    "o_case": "select order_id, case when status = 'paid' then amount else 0 end as paid"
    f" from {ref('stg_orders')}",
    "o_date": f"select order_id, order_date from {ref('stg_orders')}",
    # grandchildren
    "g_amounts": f"select order_id, amount2 from {ref('o_amounts')}",
    "g_by_customer_name": f"select c.name, b.total from {ref('o_by_customer')} b\n"
    f"join {ref('stg_customers')} c on b.customer_id = c.customer_id",
    "g_star_amount": f"select order_id, amount from {ref('o_star')}",
    "g_star_status": f"select order_id, status from {ref('o_star')}",
    "g_status_count": f"select status, count(*) as n from {ref('o_status')} group by status",
    "g_join": f"select order_id, name from {ref('o_join_customer')}",
    "g_total_rank": "select customer_id, total, rank() over (order by total desc, customer_id)"
    f" as r from {ref('o_by_customer')}",
    "g_running": f"select order_id, running from {ref('o_window')}",
    "g_incremental": f"select order_id, amount from {ref('o_incremental')}",
    "g_union": f"select id, amount from {ref('o_union_all')}",
    "g_view": f"select order_id from {ref('o_view_of_view')}",
    "g_agg": f"select n from {ref('o_agg_all')}",
    # customers and items
    "cu_region": f"select region, count(*) as n from {ref('stg_customers')} group by region",
    "cu_region_sizes": f"select count(*) as n from {ref('stg_customers')} group by region",
    "cu_names": f"select customer_id, upper(name) as name_upper from {ref('stg_customers')}",
    "it_qty": f"select order_id, sum(qty) as qty from {ref('stg_items')} group by order_id",
    "it_sku": f"select distinct sku from {ref('stg_items')}",
    "it_join": f"select i.order_id, i.qty, o.amount from {ref('it_qty')} i\n"
    f"join {ref('stg_orders')} o on i.order_id = o.order_id",
    "it_value": f"select order_id, qty * amount as value from {ref('it_join')}",
}
# Three chains of six, each link reading the one before.
for chain, (first, column) in {
    "a": ("g_amounts", "amount2"),
    "b": ("o_date", "order_date"),
    "c": ("cu_names", "name_upper"),
}.items():
    parent, key = first, "customer_id" if chain == "c" else "order_id"
    for link in range(1, 7):
        name = f"f_{chain}{link}"
        MODELS[name] = f"select {key}, {column} from {ref(parent)}"
        parent = name

MACROS = "{% macro cents(column) %}round({{ column }} / 100.0, 2){% endmacro %}\n"
SNAPSHOTS = {"orders_snapshot"}  # their rows record when they were taken: not compared
SNAPSHOT = """{% snapshot orders_snapshot %}
{{ config(unique_key='order_id', strategy='check', check_cols='all',
          target_schema=target.schema) }}
select order_id, status from {{ ref('stg_orders') }}
{% endsnapshot %}
"""


def write_project(dest: Path) -> Path:
    for folder in ("models", "seeds", "macros", "snapshots"):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    document = {
        "name": "shapes",
        "version": "1.0.0",
        "profile": "shapes",
        "config-version": 2,
        "models": {"shapes": {"+materialized": "table"}},
    }
    (dest / "dbt_project.yml").write_text(yaml.safe_dump(document))
    for name, rows in SEEDS.items():
        (dest / "seeds" / f"{name}.csv").write_text(rows + "\n")
    for name, sql in MODELS.items():
        (dest / "models" / f"{name}.sql").write_text(sql + "\n")
    (dest / "macros" / "cents.sql").write_text(MACROS)
    (dest / "snapshots" / "orders_snapshot.sql").write_text(SNAPSHOT)
    return dest


# --- the changes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One edit, and the models the slim job after it builds (EVERY: what dbt's
    state:modified+ selects)."""

    what: str
    file: str  # models/<name>.sql, or macros/cents.sql
    old: str
    new: str
    built: frozenset[str] | str
    views: frozenset[str] = frozenset()  # built besides on PostgreSQL (dropped with a rebuild)
    fails: bool = False  # the job fails loudly (a child reads what the change removed)


EVERY = "every descendant"
STG_VIEWS = frozenset({"o_view", "o_view_of_view"})


def change(what: str, model: str, old: str, new: str, built: set[str] | str, **more: Any) -> Change:
    file = model if "/" in model else f"models/{model}.sql"
    expected = built if isinstance(built, str) else frozenset(built)
    return Change(what, file, old, new, expected, **more)


# What a changed `amount` in stg_orders reaches: every model whose outputs or rows it decides.
AMOUNT_READERS = {
    "stg_orders", "o_amounts", "g_amounts", "f_a1", "f_a2", "f_a3", "f_a4", "f_a5", "f_a6",
    "o_star", "g_star_amount", "o_by_customer", "c_macro", "g_by_customer_name",
    "g_total_rank", "o_union_all", "g_union", "o_window", "g_running", "o_incremental",
    "g_incremental", "o_from_ephemeral", "o_macro", "o_scalar", "o_agg_all", "o_limit",
    "o_case", "it_join", "it_value", "o_where",
}  # fmt: skip

FIRST = [
    change("a new column", "stg_orders", "order_date from", "order_date, 1 as extra from",
           {"stg_orders", "o_star"}, views=STG_VIEWS),
    change("a changed expression", "stg_orders", "amount,", "amount * 10 as amount,",
           AMOUNT_READERS, views=STG_VIEWS),
    change("a comment only", "o_by_customer", "select", "-- totals per customer\nselect",
           {"o_by_customer"}),
    change("a CTE refactor with the same output", "o_amounts",
           f"select order_id, amount * 2 as amount2 from {ref('stg_orders')}",
           f"with base as (select order_id, amount from {ref('stg_orders')})\n"
           "select order_id, amount * 2 as amount2 from base", {"o_amounts"}),
    change("a renamed column no child reads", "o_by_customer", "count(*) as n",
           "count(*) as order_count", {"o_by_customer"}),
    change("a changed filter", "o_status", "status <> 'void'",
           "status <> 'void' and amount > 3", {"o_status", "g_status_count"}),
    change("a changed join key", "o_join_customer", "o.customer_id = c.customer_id",
           "o.order_id = c.customer_id", {"o_join_customer", "g_join"}),
    change("DISTINCT added", "o_date", "select order_id", "select distinct order_id",
           {"o_date", "f_b1", "f_b2", "f_b3", "f_b4", "f_b5", "f_b6"}),
    change("UNION ALL to UNION", "o_union_all", "union all", "union",
           {"o_union_all", "g_union"}),
    change("a new aggregate without GROUP BY", "o_agg_all", "count(*) as n,",
           "count(*) as n, min(amount) as lowest,", {"o_agg_all", "g_agg"}),
    change("a macro edited", "macros/cents.sql", "100.0, 2", "10.0, 2",
           {"o_macro", "c_macro"}),
    change("a materialization changed", "o_date", "select distinct",
           "{{ config(materialized='view') }}\nselect distinct",
           {"o_date", "f_b1", "f_b2", "f_b3", "f_b4", "f_b5", "f_b6"}),
    change("a column removed that a child reads", "stg_orders", "status, ", "",
           EVERY, fails=True),
]  # fmt: skip

SECOND = [
    change("a changed expression in a GROUP BY", "stg_customers", "region from",
           "lower(region) as region from", {"stg_customers", "cu_region", "cu_region_sizes"}),
    change("a new column, no reader selects *", "stg_items", "qty from",
           "qty, qty * 2 as qty2 from", {"stg_items"}),
    change("a changed aggregate, read in a select", "it_qty", "sum(qty) as qty",
           "sum(qty) + 1 as qty", {"it_qty", "it_join", "it_value"}),
    change("a window's PARTITION BY changed", "o_window", "partition by customer_id",
           "partition by status", {"o_window", "g_running"}),
    change("a view's column changed, its readers read others", "o_view", "select order_id, status",
           "select order_id, upper(status) as status", {"o_view"}),
    change("an ephemeral model's column", "o_ephemeral", "amount, status",
           "amount * 3 as amount, status", {"o_from_ephemeral"}),
    change("an incremental model's change", "o_incremental", "where order_id > 0",
           "where order_id > -1", {"o_incremental", "g_incremental"}),
    change("a column read in a scalar subquery, a WHERE, an ORDER BY ... LIMIT", "stg_orders",
           "amount,", "amount + 1 as amount,",
           AMOUNT_READERS, views=STG_VIEWS),
    change("a status whose values merge", "stg_orders", "status,",
           "case when status = 'void' then 'open' else status end as status,",
           {"stg_orders", "o_status", "g_status_count", "o_star", "g_star_status",
            "o_distinct_status", "o_from_ephemeral_status", "o_case", "o_rank",
            "o_window", "g_running", "o_view"},  # partitioned by status, and read since
           views=STG_VIEWS),
    change("a column in a JOIN's key", "stg_customers", "id as customer_id, name",
           "id + 100 as customer_id, name",
           {"stg_customers", "o_join_customer", "g_join", "o_union", "o_in",
            "g_by_customer_name", "cu_names", "f_c1", "f_c2", "f_c3", "f_c4", "f_c5",
            "f_c6"}),
    change("a column used nowhere below", "o_date", "order_id, order_date",
           "order_id, order_date, 2 as unused", {"o_date"}),
    change("a comment in a chain's head", "g_amounts", "select", "/* head */ select",
           {"g_amounts"}),
    change("a column a chain carries", "cu_names", "upper(name)", "lower(name)",
           {"cu_names", "f_c1", "f_c2", "f_c3", "f_c4", "f_c5", "f_c6"}),
    # Compiled once by the children step (on a copy: dbt injects an ephemeral model's CTE
    # once per node), then by the build.
    change("a model that reads an ephemeral model", "o_from_ephemeral", "amount + 1",
           "amount + 2", {"o_from_ephemeral"}),
]  # fmt: skip

# On PostgreSQL a rebuilt view or table drops the views on it: those are built too.
ON_POSTGRES = [
    FIRST[0],  # a new column in stg_orders (a view): o_view and o_view_of_view go with it
    change("a view's column changed, its readers read others", "o_view",
           "select order_id, status", "select order_id, upper(status) as status",
           {"o_view"}, views=frozenset({"o_view_of_view"})),
    change("a changed filter", "o_status", "status <> 'void'",
           "status <> 'void' and amount > 3", {"o_status", "g_status_count"}),
    change("a changed expression in a GROUP BY", "stg_customers", "region from",
           "lower(region) as region from", {"stg_customers", "cu_region", "cu_region_sizes"}),
]  # fmt: skip


# --- the warehouse, read by the test --------------------------------------------------


def duckdb_held(path: Path) -> dict[str, tuple[tuple[str, ...], str]]:
    """Every relation in the file but snapshots: its columns, and a digest of its
    ordered rows."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as db:
        names = db.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
        for (name,) in names:
            if name in SNAPSHOTS:
                continue
            relation = db.execute(f'select * from main."{name}"')
            columns = tuple(d[0] for d in relation.description)
            rows = sorted(repr(row) for row in relation.fetchall())
            found[name] = (columns, hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return found


def postgres_held(postgres: Postgres, schema: str) -> dict[str, tuple[tuple[str, ...], str]]:
    rows = postgres.query(
        "select table_name, string_agg(column_name, ',' order by ordinal_position) "
        "from information_schema.columns where table_schema = %s group by table_name",
        schema,
    )
    found = {}
    for name, columns in rows:
        if name in SNAPSHOTS:
            continue
        digest = "md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
        [(value,)] = postgres.query(f'select {digest} from "{schema}"."{name}" t')
        found[name] = (tuple(columns.split(",")), value)
    return found


@dataclass
class Shapes:
    """The project, the slim job's env and the oracle's, on one warehouse kind."""

    project: Path
    env: dict[str, str]
    oracle: dict[str, str]
    held: Any  # (which: "job" or "oracle") -> each model's columns and digest
    postgres: bool = False
    log: list[str] = field(default_factory=list)

    def job(self, *args: str) -> tuple[int, dict[str, Any], str]:
        result = run_cli("run", *args, env=self.env)
        report = read_json(Path(self.env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json")
        return result.returncode, report, result.stdout[-4000:] + result.stderr[-2000:]

    def rebuild(self) -> None:
        result = run_cli("run", env=self.oracle)
        assert result.returncode == 0, result.stdout[-3000:]

    def modified_plus(self, report: dict[str, Any]) -> set[str]:
        """dbt's own state:modified+ against the state the job compared with."""
        state = Path(self.env["DBT_RUNNER_STATE_URL"]) / "shapes" / "dev" / "state" / "runs"
        folder = state / report["state"]["deferred_to"]
        listed = run_cli(
            "dbt", "--", "ls", "--select", "state:modified+", "--state", str(folder),
            "--resource-type", "model", "--output", "name", "--quiet",
            env=self.env,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stdout[-2000:]
        return {line.strip() for line in listed.stdout.splitlines() if line.strip() in MODELS}


def models_built(report: dict[str, Any]) -> set[str]:
    return {
        uid.rsplit(".", 1)[-1]
        for uid in report["state"]["built"]
        if uid.startswith("model.") and uid.rsplit(".", 1)[-1] in MODELS
    }


def apply(project: Path, step: Change) -> str:
    """The change made; the file's text before it."""
    path = project / step.file
    text = path.read_text()
    assert step.old in text, (step.what, step.old)
    path.write_text(text.replace(step.old, step.new, 1))
    return text


def check(shapes: Shapes, step: Change) -> None:
    """The slim job after one change: what it built, and a warehouse a full build of
    the same code would hold."""
    code, report, said = shapes.job()
    assert code == (1 if step.fails else 0), f"{step.what}: {said}"
    reach = report["state"].get("reach")
    assert reach is not None and reach["mode"] == "affected", (step.what, reach)
    built = models_built(report)
    whole = shapes.modified_plus(report)
    decisions = "\n".join(
        f"{d['decision']} {d['node']}: {d['reason']}" for d in report["state"]["children"]
    )
    assert built <= whole, f"{step.what}: built beyond state:modified+: {built - whole}"
    if step.fails:
        return
    expected = whole if step.built == EVERY else set(step.built)
    if shapes.postgres:
        expected |= step.views
    assert built == expected, f"{step.what}:\n{decisions}\nbuilt {sorted(built)}"
    shapes.rebuild()
    job, oracle = shapes.held("job"), shapes.held("oracle")
    relations = set(MODELS) - {"o_ephemeral"}
    assert set(job) == set(oracle) and relations <= set(job), sorted(set(job) ^ set(oracle))
    differing = sorted(n for n in job if job[n] != oracle[n])
    assert differing == [], f"{step.what}: differ from a full rebuild: {differing}\n{decisions}"
    shapes.log.append(f"{step.what}: built {len(built)} of {len(whole)} in state:modified+")


def run_changes(shapes: Shapes, changes: list[Change]) -> None:
    code, _, said = shapes.job()
    assert code == 0, said  # the state every change is compared with
    for step in changes:
        before = apply(shapes.project, step)
        check(shapes, step)
        if step.fails:  # put back: the next job builds what the failed one left
            (shapes.project / step.file).write_text(before)
            code, report, said = shapes.job()
            assert code == 0 and report["state"]["promoted"], said


def duckdb_shapes(tmp_path: Path) -> Shapes:
    project = write_project(tmp_path / "shapes")
    base = clean_env(
        DBT_RUNNER_PROJECT_DIR=str(project),
        DBT_RUNNER_WORK_DIR=str(tmp_path / "work"),
        DBT_RUNNER_PHASES="build",
    )
    env = base | {
        "DBT_RUNNER_JOB": "slim",
        "DBT_RUNNER_ARTIFACTS_URL": str(tmp_path / "out"),
        "DBT_RUNNER_STATE_URL": str(tmp_path / "state"),
        "DBT_RUNNER_WAREHOUSE__PATH": str(tmp_path / "job.duckdb"),
    }
    oracle = base | {
        "DBT_RUNNER_ENV": "oracle",
        "DBT_RUNNER_ARTIFACTS_URL": str(tmp_path / "oracle-out"),
        "DBT_RUNNER_WAREHOUSE__PATH": str(tmp_path / "oracle.duckdb"),
    }
    files = {"job": tmp_path / "job.duckdb", "oracle": tmp_path / "oracle.duckdb"}
    return Shapes(project, env, oracle, lambda which: duckdb_held(files[which]))


@pytest.mark.parametrize("changes", [FIRST, SECOND], ids=["first", "second"])
def test_a_slim_job_builds_what_a_change_reaches_and_holds_what_a_full_build_would(
    tmp_path: Path, changes: list[Change]
) -> None:
    shapes = duckdb_shapes(tmp_path)
    run_changes(shapes, changes)
    print(json.dumps(shapes.log, indent=1))


def postgres_shapes(postgres: Postgres, tmp_path: Path) -> Shapes:
    project = write_project(tmp_path / "shapes")
    suffix = uuid.uuid4().hex[:6]
    base = clean_env(
        DBT_RUNNER_PROJECT_DIR=str(project),
        DBT_RUNNER_WORK_DIR=str(tmp_path / "work"),
        DBT_RUNNER_PHASES="build",
    )
    env = base | postgres.warehouse_env(f"job_{suffix}")
    env |= {
        "DBT_RUNNER_JOB": "slim",
        "DBT_RUNNER_ARTIFACTS_URL": str(tmp_path / "out"),
        "DBT_RUNNER_STATE_URL": str(tmp_path / "state"),
    }
    oracle = base | postgres.warehouse_env(f"oracle_{suffix}")
    oracle |= {"DBT_RUNNER_ENV": "oracle", "DBT_RUNNER_ARTIFACTS_URL": str(tmp_path / "o-out")}
    schemas = {"job": f"job_{suffix}", "oracle": f"oracle_{suffix}"}
    shapes = Shapes(project, env, oracle, lambda which: postgres_held(postgres, schemas[which]))
    shapes.postgres = True
    return shapes


def test_on_postgres_the_views_a_rebuild_drops_are_built_too(
    postgres: Postgres, tmp_path: Path
) -> None:
    run_changes(postgres_shapes(postgres, tmp_path), ON_POSTGRES)


SLOW = "pg_sleep(g.seconds)"  # as the query running names it


def test_a_stopped_slim_job_and_its_retry_keep_the_state_true(
    postgres: Postgres, tmp_path: Path
) -> None:
    """A column-scoped change; a second change, whose slim job is stopped while a
    reached model runs; its retry: after each, what a full build would hold."""
    shapes = postgres_shapes(postgres, tmp_path)
    gate = f"gate_{uuid.uuid4().hex[:6]}"
    postgres.query(f"create schema {gate}; create table {gate}.gate (seconds int)")
    postgres.query(f"insert into {gate}.gate values (0)")
    shapes.env["GATE_SCHEMA"] = shapes.oracle["GATE_SCHEMA"] = gate
    (shapes.project / "models" / "o_slow.sql").write_text(
        f"select o.order_id, o.amount from {ref('stg_orders')} o\n"
        "cross join (select pg_sleep(g.seconds) from {{ env_var('GATE_SCHEMA') }}.gate g) s\n"
    )
    code, _, said = shapes.job()
    assert code == 0, said
    apply(shapes.project, SECOND[2])  # it_qty's aggregate: it_join, it_value
    check(shapes, SECOND[2])

    apply(shapes.project, FIRST[1])  # amount: o_slow among the models it reaches
    postgres.query(f"update {gate}.gate set seconds = 300")
    started = Started(shapes.env, tmp_path / "stopped.log")
    wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    started.process.send_signal(signal.SIGTERM)
    assert started.finish(timeout=60)[0] == 143
    stopped = read_json(Path(shapes.env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json")
    assert not stopped["state"]["promoted"]
    assert "model.shapes.o_slow" in {
        d["node"] for d in stopped["state"]["children"] if d["decision"] == "build"
    }

    postgres.query(f"update {gate}.gate set seconds = 0")
    retried = run_cli("retry", env=shapes.env)
    assert retried.returncode == 0, retried.stdout[-3000:]
    report = read_json(Path(shapes.env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json")
    assert report["state"]["promoted"], report["state"]
    shapes.rebuild()
    assert shapes.held("job") == shapes.held("oracle")

    # The next slim job trusts the retry's state: only what the next change reaches.
    apply(shapes.project, SECOND[1])  # a new column in stg_items, no reader selects *
    check(shapes, SECOND[1])


def test_a_pull_request_builds_what_its_change_reaches_and_compares_that(
    tmp_path: Path,
) -> None:
    shapes = duckdb_shapes(tmp_path)
    prod = shapes.env | {"DBT_RUNNER_ENV": "prod", "DBT_RUNNER_JOB": "full"}
    assert run_cli("run", env=prod).returncode == 0
    apply(shapes.project, SECOND[0])  # lower(region) in stg_customers: cu_region
    pr = shapes.env | {"DBT_RUNNER_ENV": "ci", "DBT_RUNNER_PR": "9"}
    pr |= {"DBT_RUNNER_SLIM__DEFER_ENV": "prod"}
    result = run_cli("run", env=pr)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(Path(shapes.env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json")
    assert models_built(report) == {"stg_customers", "cu_region", "cu_region_sizes"}
    compared = {m["name"] for m in report["impact"]["models"]}
    assert compared == {"stg_customers", "cu_region", "cu_region_sizes"}
    skipped = {d["node"] for d in report["state"]["children"] if d["decision"] == "skip"}
    assert "model.shapes.cu_names" in skipped  # reads name and customer_id, not region
    out = Path(shapes.env["DBT_RUNNER_ARTIFACTS_URL"])
    summary = (out / "summary.md").read_text()
    assert f"**Children:** 2 of {len(skipped) + 2} descendant(s) of the changes built" in summary
    assert "| `model.shapes.cu_names` | no | it reads none of the changed columns" in summary
    page = (out / "report.html").read_text()
    assert 'id="children"' in page and "<code>model.shapes.cu_names</code>" in page


def test_a_fresh_job_builds_what_its_code_change_reaches(tmp_path: Path) -> None:
    """A fresh job with no new data: the code change and what it reaches, as a slim
    job would, and what a full build would hold."""
    shapes = duckdb_shapes(tmp_path)
    shapes.env |= {"DBT_RUNNER_JOB": "fresh", "DBT_RUNNER_PHASES": "freshness,build"}
    code, _, said = shapes.job()  # the state a fresh job compares with (and its sources)
    assert code == 0, said
    apply(shapes.project, SECOND[2])  # it_qty's aggregate: it_join, it_value
    check(shapes, SECOND[2])
