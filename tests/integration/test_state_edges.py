"""State and exit codes at the edges, where the runner meets what it did not write:
views a rebuild drops, an older run retried, a narrowed selection, writes from the
`dbt` passthrough and from another env, a lint phase before the build.

After every step the state's promise is checked against the warehouse: each relation
the promoted state names exists; and where a step exited 0 and promoted, the target
holds what a full rebuild of the same code into another schema holds (columns and
content). Real dbt on PostgreSQL and DuckDB, the state on file://.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.support import (
    SLOW,
    Postgres,
    Started,
    clean_env,
    latest_state,
    pointer,
    read_json,
    run_cli,
    running_queries,
    wait_until,
    written_after,
)

# --- a project of tables with views on them (PostgreSQL) ---------------------------------


def views_project(dest: Path, sleep: str = "pg_sleep(0)") -> Path:
    """raw (seed) -> m5 (table) -> v_child (view, also on slow) -> v_grand (view) ->
    t_after (table); slow (table on m5); a singular test on m5 that fails while the
    gate table says so."""
    (dest / "models").mkdir(parents=True, exist_ok=True)
    (dest / "seeds").mkdir(exist_ok=True)
    (dest / "tests").mkdir(exist_ok=True)
    project = {
        "name": "edges",
        "version": "1.0.0",
        "profile": "edges",
        "config-version": 2,
        "models": {"edges": {"+materialized": "table"}},
    }
    (dest / "dbt_project.yml").write_text(yaml.safe_dump(project))
    rows = "\n".join(f"{i},{i * 10}" for i in range(1, 11))
    (dest / "seeds" / "raw.csv").write_text(f"id,val\n{rows}\n")
    models = {
        "m5": "select id, val from {{ ref('raw') }}",
        "slow": f"select m.id from {{{{ ref('m5') }}}} m cross join (select {sleep}) s",
        "v_child": "{{ config(materialized='view') }}\n"
        "select m.id, m.val * 2 as val2 from {{ ref('m5') }} m join {{ ref('slow') }} s using (id)",
        "v_grand": "{{ config(materialized='view') }}\n"
        "select id, val2 + 1 as val3 from {{ ref('v_child') }}",
        "t_after": "select id, val3 from {{ ref('v_grand') }}",
    }
    for name, sql in models.items():
        (dest / "models" / f"{name}.sql").write_text(sql + "\n")
    # m5 its only parent (a test on two nodes would not hold back m5's children)
    (dest / "tests" / "m5_gate.sql").write_text(
        "select m.id from {{ ref('m5') }} m\n"
        "where exists (select 1 from {{ env_var('GATE_SCHEMA') }}.gate g where g.fail)\n"
    )
    return dest


RELATIONS = {"raw", "m5", "slow", "v_child", "v_grand", "t_after"}


@pytest.fixture
def edges(postgres: Postgres, tmp_path: Path) -> dict[str, Any]:
    """The project, its gate (open), and the env of its dev job on PostgreSQL."""
    suffix = uuid.uuid4().hex[:6]
    gate = f"gate_{suffix}"
    postgres.query(f"create schema {gate}; create table {gate}.gate (fail boolean)")
    postgres.query(f"insert into {gate}.gate values (false)")
    project = views_project(tmp_path / "edges")
    env = clean_env(
        DBT_RUNNER_PROJECT_DIR=str(project),
        DBT_RUNNER_WORK_DIR=str(tmp_path / "work"),
        DBT_RUNNER_ARTIFACTS_URL=str(tmp_path / "out"),
        DBT_RUNNER_STATE_URL=str(tmp_path / "state"),
        GATE_SCHEMA=gate,
    )
    env |= postgres.warehouse_env(f"edges_{suffix}")
    return {"project": project, "env": env, "gate": gate, "out": tmp_path / "out"}


def set_gate(postgres: Postgres, gate: str, fail: bool) -> None:
    postgres.query(f"update {gate}.gate set fail = %s", fail)


def held(postgres: Postgres, schema: str) -> dict[str, tuple[tuple[str, ...], str]]:
    """Every relation in `schema`: its columns, and a digest of its ordered rows."""
    rows = postgres.query(
        "select table_name, string_agg(column_name, ',' order by ordinal_position) "
        "from information_schema.columns where table_schema = %s group by table_name",
        schema,
    )
    found = {}
    for table, columns in rows:
        rows_digest = "md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
        [(digest,)] = postgres.query(f'select {rows_digest} from "{schema}"."{table}" t')
        found[table] = (tuple(columns.split(",")), digest)
    return found


def rebuilt(postgres: Postgres, env: dict[str, str]) -> dict[str, tuple[tuple[str, ...], str]]:
    """What a full build of the current code holds, in a schema of its own (the oracle)."""
    schema = "oracle_" + uuid.uuid4().hex[:6]
    oracle = {k: v for k, v in env.items() if k != "DBT_RUNNER_STATE_URL"}
    oracle |= postgres.warehouse_env(schema) | {"DBT_RUNNER_ENV": "oracle"}
    oracle["DBT_RUNNER_ARTIFACTS_URL"] = env["DBT_RUNNER_ARTIFACTS_URL"] + "-oracle"
    result = run_cli("run", env=oracle)
    assert result.returncode == 0, result.stdout[-3000:]
    return held(postgres, schema)


def written_since(state: Path, latest: dict[str, Any], project: str) -> set[str] | None:
    """The relations written into the state's target since it (tests.support)."""
    logs = [read_json(path) for path in (state / project / "_targets").glob("*.json")]
    return written_after(latest, logs)


def state_names(state: Path, project: str = "edges") -> tuple[str, set[str]]:
    """The promoted state's schema, and the relations its manifest names that nothing
    has written since (those the next slim job builds again)."""
    latest = latest_state(state, project=project)
    since = written_since(state, latest, project)
    manifest = read_json(
        state / project / "dev" / "state" / "runs" / latest["run_id"] / "manifest.json"
    )
    names = {
        node["alias"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")
        and node["config"]["materialized"] != "ephemeral"
    }
    return str(latest["target"]["schema"]), set() if since is None else names - since


def check(postgres: Postgres, edges: dict[str, Any], step: str, promoted: bool) -> None:
    """The state's promise after a step: every relation it names exists; and after a
    step that promoted, the target holds what a full rebuild of the code holds."""
    state = Path(edges["env"]["DBT_RUNNER_STATE_URL"])
    schema, names = state_names(state)
    present = set(held(postgres, schema))
    assert names <= present, f"{step}: the state names {sorted(names - present)}, not in {schema}"
    if promoted:
        expected = rebuilt(postgres, edges["env"])
        assert held(postgres, schema) == expected, f"{step}: differs from a full rebuild"


def job(edges: dict[str, Any], *args: str, **extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli(*(args or ("run",)), env=edges["env"] | extra)
    report = read_json(edges["out"] / "report.json")
    return result.returncode, report, result.stdout + result.stderr


def promoted(report: dict[str, Any], state: Path) -> bool:
    return bool(pointer_of(state) == report["run_id"])


def pointer_of(state: Path) -> str | None:
    path = state / "edges" / "dev" / "state" / "latest.json"
    return str(read_json(path)["run_id"]) if path.is_file() else None


# --- 1. views dropped with the tables under them ------------------------------------------


def test_views_a_selected_rebuild_drops_are_built_by_the_next_slim_job(
    postgres: Postgres, edges: dict[str, Any]
) -> None:
    state = Path(edges["env"]["DBT_RUNNER_STATE_URL"])
    code, report, _ = job(edges)
    assert code == 0 and promoted(report, state)
    schema = report["target"]["schema"]

    code, report, said = job(edges, "run", "--select", "m5")
    assert code == 0, said
    assert {"v_child", "v_grand"}.isdisjoint(postgres.tables(schema))  # dropped by cascade
    assert not promoted(report, state)
    assert report["state"]["dropped"] == ["model.edges.v_child", "model.edges.v_grand"], said[
        -3000:
    ]
    assert any("v_child" in w and "drops a relation's views" in w for w in report["warnings"])

    code, report, said = job(edges, "run", "--job", "slim")
    assert code == 0, said
    assert report["state"]["mode"] == "slim" and promoted(report, state)
    assert {"fqn:edges.v_child", "fqn:edges.v_grand", "fqn:edges.m5"} <= set(
        report["state"]["unsettled"]
    )
    check(postgres, edges, "the slim job after run --select m5", promoted=True)


def test_views_skipped_after_a_failing_test_are_built_by_the_next_slim_job(
    postgres: Postgres, edges: dict[str, Any]
) -> None:
    state = Path(edges["env"]["DBT_RUNNER_STATE_URL"])
    assert job(edges)[0] == 0
    set_gate(postgres, edges["gate"], True)
    code, report, _ = job(edges)
    assert code == 1 and not promoted(report, state)
    statuses = {n["unique_id"]: n["status"] for n in report["nodes"] if n["phase"] == "build"}
    assert statuses["model.edges.m5"] == "success" and statuses["model.edges.v_child"] == "skipped"
    check(postgres, edges, "a failing test on m5", promoted=False)
    set_gate(postgres, edges["gate"], False)

    code, report, said = job(edges, "run", "--job", "slim")
    assert code == 0 and promoted(report, state), said
    check(postgres, edges, "the slim job after the failing test", promoted=True)


def test_views_dropped_before_a_stop_are_built_by_the_next_slim_job(
    postgres: Postgres, edges: dict[str, Any], tmp_path: Path
) -> None:
    state, project = Path(edges["env"]["DBT_RUNNER_STATE_URL"]), edges["project"]
    assert job(edges)[0] == 0
    views_project(project, sleep=SLOW)
    started = Started(edges["env"], tmp_path / "stopped.log")
    [pid] = wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    started.process.send_signal(signal.SIGTERM)
    assert started.finish(timeout=60)[0] == 143
    assert not running_queries(postgres, SLOW), pid
    views_project(project)  # the sleep taken out again: the code is the state's
    check(postgres, edges, "a SIGTERM once m5 was built", promoted=False)

    code, report, said = job(edges, "run", "--job", "slim")
    assert code == 0 and promoted(report, state), said
    assert "fqn:edges.v_child" in report["state"]["unsettled"]
    check(postgres, edges, "the slim job after the stop", promoted=True)


# --- 4. writes the runner's own runs did not make -------------------------------------


def by_hand(edges: dict[str, Any]) -> None:
    """`dbt-runner dbt -- run -s m5`: a person's build, through the runner's profile."""
    result = run_cli("dbt", "--", "run", "-s", "m5", env=edges["env"])
    assert result.returncode == 0, result.stdout[-3000:]


def by_another_env(edges: dict[str, Any]) -> None:
    """qa's full job, whose profile resolves to dev's schema."""
    code, _, said = job(edges, "run", DBT_RUNNER_ENV="qa")
    assert code == 0, said


@pytest.mark.parametrize("writer", [by_hand, by_another_env], ids=["passthrough", "other-env"])
def test_a_write_the_state_does_not_cover_is_built_again_by_the_next_slim_job(
    postgres: Postgres, edges: dict[str, Any], writer: Callable[[dict[str, Any]], None]
) -> None:
    """m5 built with other code, from outside dev's own runs, then the code reverted:
    dev's slim job sees no change in the code, and builds m5 again from the target's
    write log (every relation, when the other write may have touched them all)."""
    state, project = Path(edges["env"]["DBT_RUNNER_STATE_URL"]), edges["project"]
    code, report, _ = job(edges)
    assert code == 0
    schema = report["target"]["schema"]
    m5 = project / "models" / "m5.sql"
    original = m5.read_text()
    m5.write_text(original.replace("select id,", "select id, 1 as added,"))
    writer(edges)
    assert "added" in postgres.columns(schema, "m5")
    m5.write_text(original)  # reverted: m5's code is the state's again

    code, report, said = job(edges, "run", "--job", "slim")
    assert code == 0 and promoted(report, state), said
    assert report["state"]["mode"] == "slim", report["state"]
    assert "model.edges.m5" in report["state"]["built"]
    if writer is by_another_env:  # a whole job: every relation it wrote is built again
        assert {f"fqn:edges.{name}" for name in RELATIONS} <= set(report["state"]["unsettled"])
    assert "added" not in postgres.columns(schema, "m5")
    check(postgres, edges, f"the slim job after a write {writer.__name__}", promoted=True)


def test_a_passthrough_build_waits_for_no_one_and_skips_nothing(
    edges: dict[str, Any],
) -> None:
    """A building command takes the env's lease like a run (a held env is an error,
    never a silent skip); a command that only reads takes none."""
    state = Path(edges["env"]["DBT_RUNNER_STATE_URL"])
    lease = state / "edges" / "dev" / "lease.json"
    lease.parent.mkdir(parents=True)
    holder = {
        "run_id": "running-job",
        "job": "full",
        "started_at": "2026-12-01T00:00:00Z",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    lease.write_text(json.dumps(holder))
    refused = run_cli("dbt", "--", "run", env=edges["env"])
    assert refused.returncode == 4, refused.stdout[-2000:]
    assert "run running-job (full" in refused.stderr and "holds edges/dev" in refused.stderr
    listed = run_cli("dbt", "--", "ls", "--resource-type", "model", env=edges["env"])
    assert listed.returncode == 0 and "edges.m5" in listed.stdout
    assert read_json(lease)["run_id"] == "running-job"


# --- the backstop ---------------------------------------------------------------------


def test_a_state_that_names_a_relation_the_warehouse_lacks_is_not_promoted(
    postgres: Postgres, edges: dict[str, Any]
) -> None:
    """Written from outside (a person, another tool): the view is gone and no runner
    wrote its drop. The slim job finds nothing changed, and the check before promotion
    finds what the state would name missing: not promoted, said, built next time."""
    state = Path(edges["env"]["DBT_RUNNER_STATE_URL"])
    code, first, _ = job(edges)
    assert code == 0
    schema = first["target"]["schema"]
    postgres.query(f'drop view "{schema}"."v_grand"')

    code, report, said = job(edges, "run", "--job", "slim")
    assert code == 0, said
    assert pointer_of(state) == first["run_id"]  # not promoted
    assert report["state"]["missing"] == ["model.edges.v_grand"]
    [warning] = [w for w in report["warnings"] if "lacks" in w]
    assert "model.edges.v_grand" in warning and "not promoted" in warning
    assert "model.edges.v_grand" in (edges["out"] / "summary.md").read_text()
    assert "backstop" in report["timings"]

    code, report, said = job(edges, "run", "--job", "slim")
    assert code == 0 and promoted(report, state), said
    assert "fqn:edges.v_grand" in report["state"]["unsettled"]
    check(postgres, edges, "the slim job after a view was dropped outside", promoted=True)


# --- 2. a retry of an older run -------------------------------------------------------


def retry_project(env: dict[str, str], project: Path) -> None:
    """m1 holds the tag var; needs_outside fails until a table made outside exists."""
    (project / "models" / "marts" / "m1.sql").write_text("select '{{ var('tag', 'a') }}' as tag\n")
    (project / "models" / "marts" / "needs_outside.sql").write_text(
        "select * from main.outside_table\n"
    )


def outside(path: str, present: bool) -> None:
    with duckdb.connect(path) as con:
        con.execute("create or replace table main.outside_table as select 1 as id")
        if not present:
            con.execute("drop table main.outside_table")


def tag(path: str) -> str:
    with duckdb.connect(path, read_only=True) as con:
        row = con.execute("select tag from main.m1").fetchone()
    return str(row[0]) if row else ""


@pytest.mark.parametrize("between", ["a full job", "an edit and its revert", "a killed job"])
def test_a_retry_of_an_older_run_refuses_when_a_later_run_wrote_since(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path, between: str
) -> None:
    retry_project(env, demo_project)
    state, path = tmp_path / "state", env["DBT_RUNNER_WAREHOUSE__PATH"]
    env |= {"DBT_RUNNER_STATE_URL": str(state), "DBT_RUNNER_LEASE_TTL_S": "3"}
    outside(path, False)
    failed = run_cli("run", env=env | {"DBT_RUNNER_VARS": '{"tag": "a"}'})
    assert failed.returncode == 1, failed.stdout[-3000:]
    run_a = read_json(out_dir / "report.json")["run_id"]
    assert tag(path) == "a"
    outside(path, True)

    m1 = demo_project / "models" / "marts" / "m1.sql"
    if between == "a killed job":
        (demo_project / "models" / "marts" / "slow.sql").write_text(
            "select * from range(100000000000) t(x) where x < 0\n"
        )
        killed_env = env | {"DBT_RUNNER_VARS": '{"tag": "b"}', "DBT_RUNNER_THREADS": "4"}
        started = Started(killed_env, tmp_path / "killed.log")
        built_m1 = "OK created sql table model main.m1"
        wait_until(lambda: built_m1 in started.log.read_text(), 120, "m1 built")
        started.process.kill()
        started.process.wait(timeout=30)
        (demo_project / "models" / "marts" / "slow.sql").unlink()
        lease = state / "demo" / "dev" / "lease.json"
        wait_until(lambda: not lease.exists() or _expired(lease), 30, "the killed job's lease")
        later = None
    else:
        if between == "an edit and its revert":
            original = m1.read_text()
            m1.write_text(original.replace("as tag", "as tag, 1 as added"))
        later_run = run_cli("run", env=env | {"DBT_RUNNER_VARS": '{"tag": "b"}'})
        assert later_run.returncode == 0, later_run.stdout[-3000:]
        later = read_json(out_dir / "report.json")["run_id"]
        assert latest_state(state)["run_id"] == later
        if between == "an edit and its revert":
            m1.write_text(original)
    assert tag(path) == "b"
    good = pointer(state)

    refused = run_cli("retry", "--from-run", run_a, env=env | {"DBT_RUNNER_VARS": '{"tag": "a"}'})
    assert refused.returncode == 3, refused.stdout[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert f"after run {run_a}" in line and "run the job again" in line, line
    if later is not None:
        assert f"ERROR: run {later} (dev, full" in line, line
    assert pointer(state) == good and tag(path) == "b"


def _expired(lease: Path) -> bool:
    from datetime import UTC, datetime

    return datetime.now(UTC) > datetime.fromisoformat(read_json(lease)["expires_at"])


def test_a_retry_that_completes_its_run_records_the_state_it_promoted(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    retry_project(env, demo_project)
    state, path = tmp_path / "state", env["DBT_RUNNER_WAREHOUSE__PATH"]
    env |= {"DBT_RUNNER_STATE_URL": str(state)}
    outside(path, False)
    assert run_cli("run", env=env).returncode == 1
    outside(path, True)
    retried = run_cli("retry", env=env)
    assert retried.returncode == 0, retried.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["state"] is not None and report["state"]["promoted"] is True
    assert latest_state(state)["run_id"] == report["run_id"]
    horizon = latest_state(state)["horizon"]
    assert {report["run_id"], report["retry_of"]} <= set(horizon["covers"])
    slim = run_cli("run", "--job", "slim", env=env)
    assert slim.returncode == 0, slim.stdout[-3000:]
    after = read_json(out_dir / "report.json")["state"]
    assert after["mode"] == "slim" and after["unsettled"] == [], after


# --- 3. a narrowed slim selection -------------------------------------------------------


def test_a_narrowed_slim_selection_is_never_promoted_as_the_whole_project(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env |= {"DBT_RUNNER_STATE_URL": str(state)}
    assert run_cli("run", env=env).returncode == 0
    good = pointer(state)
    stg = demo_project / "models" / "staging" / "stg_orders.sql"
    # order_id, which orders joins on: every descendant of stg_orders may change
    stg.write_text(stg.read_text().replace("id as order_id", "id + 0 as order_id", 1))

    narrow = env | {"DBT_RUNNER_JOB": "slim", "DBT_RUNNER_SLIM__SELECT": "state:modified"}
    result = run_cli("run", env=narrow)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    built = {uid for uid in report["state"]["built"] if uid.startswith("model.")}
    assert built == {"model.demo.stg_orders"}
    assert pointer(state) == good and report["builds_whole_project"] is False

    slim = run_cli("run", env=env | {"DBT_RUNNER_JOB": "slim"})
    assert slim.returncode == 0, slim.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert pointer(state) == report["run_id"]
    models = {uid for uid in report["state"]["built"] if uid.startswith("model.")}
    assert {"model.demo.orders", "model.demo.daily_revenue", "model.demo.customers"} <= models

    oracle = tmp_path / "oracle.duckdb"
    full = {k: v for k, v in env.items() if k != "DBT_RUNNER_STATE_URL"}
    full |= {"DBT_RUNNER_WAREHOUSE__PATH": str(oracle), "DBT_RUNNER_ENV": "oracle"}
    full["DBT_RUNNER_ARTIFACTS_URL"] = str(tmp_path / "oracle-out")
    assert run_cli("run", env=full).returncode == 0
    assert duck_held(env["DBT_RUNNER_WAREHOUSE__PATH"]) == duck_held(str(oracle))


def duck_held(path: str) -> dict[str, tuple[list[str], str]]:
    """Every model relation in DuckDB's main schema: columns and ordered rows' digest."""
    found = {}
    with duckdb.connect(path, read_only=True) as con:
        names = con.execute(
            "select table_name from information_schema.tables where table_schema = 'main' "
            "and table_name not like 'raw_%' and table_name not like '%snapshot%'"
        ).fetchall()
        for (name,) in names:
            columns = [c[0] for c in con.execute(f'describe main."{name}"').fetchall()]
            rows = con.execute(f'select * from main."{name}"').fetchall()
            found[name] = (columns, str(sorted(map(str, rows))))
    return found


# --- 7. lint, then build, on one parse ------------------------------------------------


def test_lint_before_the_build_leaves_the_build_what_it_parsed(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    """SQLFluff's dbt templater compiles nodes in place: a SQL snapshot and a model
    reading an ephemeral one broke the build after it. Lint works on a copy."""
    snapshots = demo_project / "snapshots"
    (snapshots / "orders_snapshot.sql").write_text(
        "{% snapshot orders_snapshot %}\n"
        "{{ config(unique_key='order_id', strategy='check', check_cols='all') }}\n"
        "select order_id, status from {{ ref('stg_orders') }}\n"
        "{% endsnapshot %}\n"
    )
    marts = demo_project / "models" / "marts"
    (marts / "eph.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect order_id from {{ ref('stg_orders') }}\n"
    )
    (marts / "reads_eph.sql").write_text("select order_id from {{ ref('eph') }}\n")
    linted = env | {"DBT_RUNNER_JOB": "custom", "DBT_RUNNER_PHASES": "deps,lint,build"}
    result = run_cli("run", env=linted)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Skipped file" not in result.stdout + result.stderr  # every file was templated
    report = read_json(out_dir / "report.json")
    ran = {p["name"]: p["status"] for p in report["phases"] if p["status"] != "skipped"}
    assert list(ran) == ["deps", "parse", "lint", "build"]
    assert ran["lint"] in ("success", "failed"), ran  # findings, or none: it linted
    build = {n["unique_id"]: n["status"] for n in report["nodes"] if n["phase"] == "build"}
    assert build["snapshot.demo.orders_snapshot"] == "success"
    assert build["model.demo.reads_eph"] == "success"
    assert "snapshots/orders_snapshot.sql" in report["lint"]["files"]

    alone = run_cli("lint", env=env)  # the lint verb: the same findings on its own
    lint_alone = read_json(out_dir / "report.json")["lint"]
    assert alone.returncode in (0, 1)
    assert lint_alone["findings"] == report["lint"]["findings"]
