"""State that never lies: each way a run could exit 0, or promote state, while the
warehouse does not hold what the state says, tried the way users get there (a stop and
an edit, a changed target, a read-only project, settings that lose, a killed task).
Real dbt on PostgreSQL and DuckDB, state on file:// (S3 in test_concurrency)."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from tests.support import (
    SLOW,
    Postgres,
    Started,
    add_slow_model,
    by_id,
    latest_state,
    pointer,
    read_json,
    run_cli,
    running_queries,
    wait_until,
)

DEMO_MODELS = {
    "stg_customers",
    "stg_orders",
    "stg_payments",
    "orders",
    "customers",
    "daily_revenue",
}


def stop_in_the_slow_model(env: dict[str, str], postgres: Postgres, log: Path, sig: int) -> int:
    """Start the job, wait until the slow model's query runs, send `sig`; the exit code."""
    started = Started(env, log)
    [pid] = wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    started.process.send_signal(sig)
    code, _ = started.finish(timeout=60)
    if sig == signal.SIGKILL:  # nobody is left to cancel its query
        postgres.query("select pg_terminate_backend(%s)", pid)
    return code


# --- 1. a retry after an edit -----------------------------------------------------------


def test_retry_refuses_when_a_model_it_built_has_changed(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    schema = "edit_" + uuid.uuid4().hex[:6]
    state = tmp_path / "state"
    env |= postgres.warehouse_env(schema) | {"DBT_RUNNER_STATE_URL": str(state)}
    add_slow_model(demo_project)
    assert stop_in_the_slow_model(env, postgres, tmp_path / "run.log", signal.SIGTERM) == 143
    stopped = read_json(out_dir / "report.json")
    assert by_id(stopped, "build")["model.demo.stg_orders"]["status"] == "success"

    # The user fixes the slowness, and also adds a column to a model that had finished.
    add_slow_model(demo_project, sleep="pg_sleep(0)")
    stg_orders = demo_project / "models" / "staging" / "stg_orders.sql"
    stg_orders.write_text(stg_orders.read_text().replace("select", "select 1 as added,", 1))
    refused = run_cli("retry", env=env)
    assert refused.returncode == 3, refused.stdout[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert f"the project changed since run {stopped['run_id']} built" in line
    assert "model.demo.stg_orders" in line and "run the job again" in line
    assert pointer(state) is None  # nothing claims the new column exists
    assert "added" not in postgres.columns(schema, "stg_orders")
    assert read_json(out_dir / "report.json")["status"] == "config_error"

    # What the user runs next: the job again, which builds it and becomes the state.
    again = run_cli("run", env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "added" in postgres.columns(schema, "stg_orders")
    assert pointer(state) == read_json(out_dir / "report.json")["run_id"]


def test_what_a_stopped_run_built_is_built_again_after_a_revert(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    """Found by the sweep (test_sweep.py): a stopped slim job had rebuilt a changed
    model; the change is reverted, so that model is no longer 'modified' against the
    state, yet the warehouse holds the reverted code. It must be built again."""
    schema = "revert_" + uuid.uuid4().hex[:6]
    state = tmp_path / "state"
    env |= postgres.warehouse_env(schema) | {"DBT_RUNNER_STATE_URL": str(state)}
    assert run_cli("run", env=env).returncode == 0
    stg_orders = demo_project / "models" / "staging" / "stg_orders.sql"
    original = stg_orders.read_text()
    stg_orders.write_text(original.replace("select", "select 1 as added,", 1))
    add_slow_model(demo_project)
    slim = env | {"DBT_RUNNER_JOB": "slim"}
    assert stop_in_the_slow_model(slim, postgres, tmp_path / "run.log", signal.SIGTERM) == 143
    assert "added" in postgres.columns(schema, "stg_orders")  # built before the stop

    stg_orders.write_text(original)  # the developer reverts the change
    add_slow_model(demo_project, sleep="pg_sleep(0)")
    result = run_cli("run", env=slim)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["state"]["mode"] == "slim"
    assert "fqn:demo.staging.stg_orders" in report["state"]["unsettled"]
    assert "model.demo.stg_orders" in report["state"]["built"]
    assert "added" not in postgres.columns(schema, "stg_orders")
    # Settled: the next slim job has nothing left to rebuild.
    again = run_cli("run", env=slim)
    assert again.returncode == 0, again.stdout[-3000:]
    assert read_json(out_dir / "report.json")["state"]["unsettled"] == []


# --- 2. the state's target --------------------------------------------------------------


def test_a_state_is_trusted_only_by_the_target_it_was_made_for(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    schema_a, schema_b = f"sc_a_{suffix}", f"sc_b_{suffix}"
    state = tmp_path / "state"
    env |= {"DBT_RUNNER_STATE_URL": str(state)}
    assert run_cli("run", env=env | postgres.warehouse_env(schema_a)).returncode == 0
    assert latest_state(state)["target"]["schema"] == schema_a

    # Another schema, no change: every model is built there, and it becomes the state.
    slim_b = env | postgres.warehouse_env(schema_b) | {"DBT_RUNNER_JOB": "slim"}
    moved = run_cli("run", env=slim_b)
    assert moved.returncode == 0, moved.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["state"]["mode"] == "full"
    assert f"another target (schema {schema_a} -> {schema_b})" in report["state"]["reason"]
    assert postgres.tables(schema_b) >= DEMO_MODELS
    assert report["target"]["schema"] == schema_b
    assert latest_state(state)["run_id"] == report["run_id"]

    # The next slim job in that schema trusts it: a change builds alone, and works.
    customers = demo_project / "models" / "marts" / "customers.sql"
    customers.write_text(customers.read_text().replace("c.last_name,", "c.last_name, 1 as tier,"))
    slim = run_cli("run", env=slim_b)
    assert slim.returncode == 0, slim.stdout[-3000:]
    state_info = read_json(out_dir / "report.json")["state"]
    assert state_info["mode"] == "slim"
    assert {uid for uid in state_info["built"] if uid.startswith("model.")} == {
        "model.demo.customers"
    }
    assert "tier" in postgres.columns(schema_b, "customers")


def test_a_profile_switch_is_another_target(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """The project's own profile first, then the rendered one (DuckDB files apart)."""
    own, rendered = tmp_path / "own.duckdb", Path(env.pop("DBT_RUNNER_WAREHOUSE__PATH"))
    profile = {"demo": {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": str(own)}}}}
    (demo_project / "profiles.yml").write_text(yaml.safe_dump(profile))
    env |= {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    assert run_cli("run", env=env).returncode == 0
    assert latest_state(tmp_path / "state")["target"]["location"] == str(own)

    switched = env | {
        "DBT_RUNNER_PROFILE_SOURCE": "rendered",
        "DBT_RUNNER_WAREHOUSE__PATH": str(rendered),
        "DBT_RUNNER_JOB": "slim",
    }
    result = run_cli("run", env=switched)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["state"]["mode"] == "full"
    assert f"location {own} -> {rendered}" in report["state"]["reason"]
    with duckdb.connect(str(rendered), read_only=True) as con:
        tables = {
            row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()
        }
        views = {row[0] for row in con.execute("select view_name from duckdb_views()").fetchall()}
    assert tables | views >= DEMO_MODELS


def test_state_written_before_targets_were_recorded_is_untrusted_once(
    env: dict[str, str], out_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env |= {"DBT_RUNNER_STATE_URL": str(state)}
    assert run_cli("run", env=env).returncode == 0
    folder = state / "demo" / "dev" / "state"
    old = {key: value for key, value in latest_state(state).items() if key != "target"}
    (folder / "latest.json").write_text(json.dumps(old))  # as dbt-runner 0.1.0 wrote it

    slim = run_cli("run", "--job", "slim", env=env)
    assert slim.returncode == 0, slim.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["state"]["mode"] == "full" and "records no target" in report["state"]["reason"]
    assert latest_state(state)["target"] == report["target"]
    again = run_cli("run", "--job", "slim", env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert read_json(out_dir / "report.json")["state"]["mode"] == "slim"


def test_a_var_or_env_var_a_model_reads_is_part_of_what_the_state_says(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """dbt's state:modified sees code, not the values a model reads: a slim job after
    one of them changed builds everything (and says why), never trusts the old tables."""
    customers = demo_project / "models" / "marts" / "customers.sql"
    reads = "c.last_name, '{{ env_var(\"DEMO_REGION\") }}' as region, {{ var('tier', 1) }} as tier,"
    customers.write_text(customers.read_text().replace("c.last_name,", reads))
    state, path = tmp_path / "state", env["DBT_RUNNER_WAREHOUSE__PATH"]
    env |= {"DBT_RUNNER_STATE_URL": str(state), "DEMO_REGION": "eu", "DBT_RUNNER_JOB": "slim"}

    def run_slim(**changed: str) -> dict[str, Any]:
        result = run_cli("run", env=env | changed)
        assert result.returncode == 0, result.stdout[-3000:]
        report = read_json(out_dir / "report.json")
        assert latest_state(state)["run_id"] == report["run_id"]  # promoted
        assert "DEMO_REGION" in latest_state(state)["inputs"]["env_vars"]
        return dict(report["state"])

    def customers_hold() -> tuple[str, int]:
        with duckdb.connect(path, read_only=True) as con:
            row = con.execute("select distinct region, tier from main.customers").fetchone()
        return (str(row[0]), int(row[1])) if row else ("", 0)

    assert run_slim()["mode"] == "full"  # no state yet
    unchanged = run_slim()  # a warm parse: dbt's record of the variables is kept
    assert unchanged["mode"] == "slim" and unchanged["warm_parse"], unchanged
    assert not [uid for uid in unchanged["built"] if uid.startswith("model.")]

    planned = run_cli("plan", env=env | {"DEMO_REGION": "us"})
    assert "the environment variable(s) DEMO_REGION differ" in planned.stdout, planned.stdout
    moved = run_slim(DEMO_REGION="us")
    assert moved["mode"] == "full", moved
    assert "DEMO_REGION differ from the state's run" in moved["reason"]
    assert customers_hold() == ("us", 1)

    env["DEMO_REGION"] = "us"
    revalued = run_slim(DBT_RUNNER_VARS='{"tier": 2}')
    assert revalued["mode"] == "full" and "the dbt vars" in revalued["reason"], revalued
    assert customers_hold() == ("us", 2)
    again = run_slim(DBT_RUNNER_VARS='{"tier": 2}')  # the same inputs: slim again
    assert again["mode"] == "slim", again
    assert customers_hold() == ("us", 2)


def test_a_retry_completes_a_run_only_with_the_values_it_was_built_with(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """dbt retry reuses the failed run's vars, and renders what it runs again with the
    environment as it is now: a retry whose vars or environment variables differ from
    the run it completes would promote a state naming values the tables were not built
    with. It refuses and says which; with the run's own values it completes the run."""
    marts = demo_project / "models" / "marts"
    (marts / "tiered.sql").write_text("select {{ var('tier', 1) }} as tier\n")
    # Fails until a table made outside dbt exists: what a retry is for.
    (marts / "from_outside.sql").write_text("select * from main.outside_table\n")
    state, path = tmp_path / "state", env["DBT_RUNNER_WAREHOUSE__PATH"]
    env |= {"DBT_RUNNER_STATE_URL": str(state)}

    def outside(present: bool) -> None:
        with duckdb.connect(path) as con:
            con.execute("create or replace table main.outside_table as select 1 as id")
            if not present:
                con.execute("drop table main.outside_table")

    def tier() -> int:
        with duckdb.connect(path, read_only=True) as con:
            row = con.execute("select tier from main.tiered").fetchone()
        return int(row[0]) if row else 0

    outside(True)
    first = run_cli("run", env=env | {"DBT_RUNNER_VARS": '{"tier": 1}'})
    assert first.returncode == 0, first.stdout[-3000:]
    outside(False)
    failed = run_cli("run", env=env | {"DBT_RUNNER_VARS": '{"tier": 2}'})
    assert failed.returncode == 1, failed.stdout[-3000:]
    failed_id = read_json(out_dir / "report.json")["run_id"]
    assert latest_state(state)["run_id"] != failed_id and tier() == 2
    outside(True)

    # The vars set back to what the state says: the tables hold tier 2.
    refused = run_cli("retry", env=env | {"DBT_RUNNER_VARS": '{"tier": 1}'})
    assert refused.returncode == 3, refused.stdout[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert f"run {failed_id} was built with other values of the dbt vars" in line
    assert latest_state(state)["run_id"] != read_json(out_dir / "report.json")["run_id"]

    completed = run_cli("retry", env=env | {"DBT_RUNNER_VARS": '{"tier": 2}'})
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert latest_state(state)["run_id"] == read_json(out_dir / "report.json")["run_id"]
    slim = env | {"DBT_RUNNER_VARS": '{"tier": 2}', "DBT_RUNNER_JOB": "slim"}
    same = run_cli("run", env=slim)
    assert same.returncode == 0, same.stdout[-3000:]
    assert read_json(out_dir / "report.json")["state"]["mode"] == "slim"
    back = run_cli("run", env=slim | {"DBT_RUNNER_VARS": '{"tier": 1}'})
    assert back.returncode == 0, back.stdout[-3000:]
    assert read_json(out_dir / "report.json")["state"]["mode"] == "full"
    assert tier() == 1


def test_an_edit_to_a_seed_dbt_compares_by_path_is_built_with_what_reads_it(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """Over 1 MiB dbt keeps a seed's path, not a hash of its rows: state:modified does
    not see an edit, so the state keeps the file's digest and the slim job builds it."""
    seed = demo_project / "seeds" / "big_rates.csv"
    rows = [f"{n},rate_{n:07d},{n % 97}" for n in range(60_000)]
    seed.write_text("id,name,rate\n" + "\n".join(rows) + "\n")
    assert seed.stat().st_size > 1 << 20
    reader = demo_project / "models" / "marts" / "rate_total.sql"
    reader.write_text("select sum(rate) as total from {{ ref('big_rates') }}\n")
    state, path = tmp_path / "state", env["DBT_RUNNER_WAREHOUSE__PATH"]
    env |= {"DBT_RUNNER_STATE_URL": str(state), "DBT_RUNNER_JOB": "slim"}

    def run_slim() -> dict[str, Any]:
        result = run_cli("run", env=env)
        assert result.returncode == 0, result.stdout[-3000:]
        report = read_json(out_dir / "report.json")
        assert latest_state(state)["run_id"] == report["run_id"]  # promoted
        return dict(report["state"])

    def total() -> int:
        with duckdb.connect(path, read_only=True) as con:
            row = con.execute("select total from main.rate_total").fetchone()
        return int(row[0]) if row else -1

    assert run_slim()["mode"] == "full"
    assert set(latest_state(state)["seeds"]) == {"fqn:demo.big_rates"}
    before = total()

    seed.write_text(seed.read_text().replace("\n1,rate_0000001,1\n", "\n1,rate_0000001,2\n"))
    edited = run_slim()
    assert edited["mode"] == "slim" and edited["seeds_changed"] == ["fqn:demo.big_rates+"]
    assert {"seed.demo.big_rates", "model.demo.rate_total"} <= set(edited["built"]), edited
    assert total() == before + 1

    unchanged = run_slim()  # the new state holds the edit: nothing to build
    assert unchanged["mode"] == "slim" and unchanged["seeds_changed"] == [], unchanged
    assert not [uid for uid in unchanged["built"] if uid.split(".")[0] in ("model", "seed")]


# --- 3. a database in the runner's scratch folder ---------------------------------------


def test_a_database_in_the_scratch_folder_never_becomes_state(
    env: dict[str, str], out_dir: Path, tmp_path: Path
) -> None:
    scratch_db = tmp_path / "work" / "db" / "demo.duckdb"
    env |= {
        "DBT_RUNNER_WAREHOUSE__PATH": str(scratch_db),
        "DBT_RUNNER_STATE_URL": str(tmp_path / "state"),
    }
    plan = run_cli("plan", env=env)
    assert plan.returncode == 0, plan.stderr
    assert f"# target: duckdb {scratch_db}" in plan.stdout
    assert "inside the runner's scratch folder" in plan.stdout

    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    [warning] = [w for w in report["warnings"] if "scratch folder" in w]
    assert str(scratch_db) in warning and "DBT_RUNNER_WAREHOUSE__PATH" in warning
    assert "scratch folder" in (out_dir / "summary.md").read_text()
    assert "scratch folder" in result.stdout
    assert report["state"] is None or report["state"]["promoted"] is False
    assert not (tmp_path / "state" / "demo" / "dev" / "state" / "latest.json").exists()


# --- 4. warehouse settings an existing profile would leave unused ----------------------


def test_warehouse_settings_the_profile_would_ignore_are_an_error(
    env: dict[str, str], demo_project: Path, postgres: Postgres, tmp_path: Path
) -> None:
    project_db = tmp_path / "project.duckdb"
    profile = {
        "demo": {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": str(project_db)}}}
    }
    (demo_project / "profiles.yml").write_text(yaml.safe_dump(profile))
    del env["DBT_RUNNER_WAREHOUSE__PATH"]
    schema = "ignored_" + uuid.uuid4().hex[:6]
    env |= postgres.warehouse_env(schema)
    for verb in ("check", "plan", "run"):
        result = run_cli(verb, env=env)
        assert result.returncode == 3, f"{verb}: {result.stdout[-2000:]}"
        [line] = result.stderr.strip().splitlines()
        assert "DBT_RUNNER_WAREHOUSE__TYPE" in line and "would be ignored" in line, line
        assert str(demo_project / "profiles.yml") in line
        assert "DBT_RUNNER_PROFILE_SOURCE=rendered" in line
        assert "configuration OK" not in result.stdout
    assert not project_db.exists() and postgres.tables(schema) == set()

    rendered = run_cli("run", env=env | {"DBT_RUNNER_PROFILE_SOURCE": "rendered"})
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    assert postgres.tables(schema) >= DEMO_MODELS and not project_db.exists()


# --- 5. a killed run --------------------------------------------------------------------


def test_a_killed_run_is_not_taken_for_a_finished_one(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env |= postgres.warehouse_env("killed_" + uuid.uuid4().hex[:6])
    env |= {"DBT_RUNNER_STATE_URL": str(state), "DBT_RUNNER_LEASE_TTL_S": "20"}
    assert run_cli("run", env=env).returncode == 0  # an earlier run that succeeded
    good = pointer(state)
    add_slow_model(demo_project)
    killed = "killed-" + uuid.uuid4().hex[:6]
    code = stop_in_the_slow_model(
        env | {"DBT_RUNNER_RUN_ID": killed}, postgres, tmp_path / "run.log", signal.SIGKILL
    )
    assert code == -signal.SIGKILL

    # While its lease lasts, it may as well be running: the retry says both.
    early = run_cli("retry", env=env)
    assert early.returncode == 3, early.stdout[-3000:]
    assert f"run {killed} has not finished: it is still running, or was killed" in early.stderr
    plan = run_cli("plan", env=env)
    assert f"the last run, {killed}, did not finish" in plan.stdout
    lease = state / "demo" / "dev" / "lease.json"
    expires = datetime.fromisoformat(read_json(lease)["expires_at"])
    wait_until(lambda: datetime.now(UTC) > expires, 60, "the killed run's lease to expire")

    refused = run_cli("retry", env=env)
    assert refused.returncode == 3, refused.stdout[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert f"run {killed} did not finish: it was killed" in line and "run the job again" in line
    assert "nothing to retry" not in refused.stdout
    from_run = run_cli("retry", "--from-run", killed, env=env)
    assert from_run.returncode == 3 and f"run {killed} did not finish" in from_run.stderr
    assert pointer(state) == good
