"""The verbs besides `run`, logs, profiles and signals, through the real CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.support import ROOT, Postgres, read_json, run_cli, running_queries, wait_until


def test_version_reads_version_file(env: dict[str, str]) -> None:
    result = run_cli("version", env=env)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"dbt-runner {(ROOT / 'VERSION').read_text().strip()}"
    assert lines[1].startswith("dbt-core 1.11.")
    assert {"dbt-duckdb", "dbt-postgres", "dbt-redshift", "dbt-bigquery"} <= {
        line.split()[0] for line in lines[2:]
    }
    as_json = json.loads(run_cli("version", "--json", env=env).stdout)
    assert set(as_json["adapters"]) == {"duckdb", "postgres", "redshift", "bigquery"}


def test_check_prints_config_with_secrets_redacted(env: dict[str, str]) -> None:
    env.update(
        DBT_RUNNER_WAREHOUSE__PASSWORD="s3cr3t-value",
        DBT_RUNNER_SELECT="tag:nightly",
        DBT_RUNNER_VARS='{"start_date": "2026-01-01"}',
    )
    result = run_cli("check", "--json", "--select", "customers+", env=env)
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-value" not in result.stdout
    effective = json.loads(result.stdout)
    settings = effective["settings"]
    assert settings["warehouse"]["password"] == "**********"
    assert settings["select"] == "customers+"  # the flag beat the environment
    assert settings["vars"] == {"start_date": "2026-01-01"}
    assert effective["project"] == {"name": "demo", "profile": "demo"}
    assert effective["phases"] == ["deps", "debug", "seed", "build", "freshness", "docs"]


def test_plan_lists_dbt_commands_and_runs_nothing(env: dict[str, str], tmp_path: Path) -> None:
    env.update(DBT_RUNNER_SELECT="stg_orders+", DBT_RUNNER_THREADS="2")
    result = run_cli("plan", "--json", "--full-refresh", "--exclude", "daily_revenue", env=env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [step["phase"] for step in plan] == [
        "deps",
        "debug",
        "parse",
        "seed",
        "build",
        "freshness",
        "docs",
    ]
    build = next(step["args"] for step in plan if step["phase"] == "build")
    assert build[:7] == [
        "build",
        "--select",
        "stg_orders+",
        "--exclude",
        "daily_revenue",
        "--exclude-resource-type",
        "seed",
    ]
    assert "--full-refresh" in build and build[build.index("--threads") + 1] == "2"
    docs = next(step["args"] for step in plan if step["phase"] == "docs")
    assert "--select" not in docs  # the published docs cover the whole project
    assert not Path(env["DBT_RUNNER_WAREHOUSE__PATH"]).exists()
    assert not (tmp_path / "work").exists()
    text = run_cli("plan", "--job", "custom", "--phases", "build,seed", env=env)
    assert text.returncode == 0
    commands = [line for line in text.stdout.splitlines() if not line.startswith("#")]
    assert [line.split()[0] for line in commands] == ["parse", "seed", "build"]


def test_dbt_passthrough_uses_the_rendered_profile(env: dict[str, str]) -> None:
    deps = run_cli("dbt", "--", "deps", env=env)
    assert deps.returncode == 0, deps.stdout + deps.stderr
    result = run_cli("dbt", "--", "ls", "--resource-type", "model", "--output", "name", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"customers", "orders", "daily_revenue"} <= set(result.stdout.split())
    assert run_cli("dbt", "--version", env=env).returncode == 0
    failing = run_cli("dbt", "--", "run-operation", "no_such_macro", env=env)
    assert failing.returncode in (1, 2)
    # dbt's import is frozen (startup.py) and the process ends without the interpreter's
    # teardown (process.py): DuckDB's bindings never check for leaks, nor print any.
    seed = run_cli("dbt", "--", "seed", env=env)
    assert seed.returncode == 0, seed.stdout[-3000:] + seed.stderr
    assert "nanobind" not in seed.stderr


def test_json_logs_are_json_lines(env: dict[str, str], out_dir: Path) -> None:
    env["DBT_RUNNER_LOG_FORMAT"] = "json"
    result = run_cli("run", "--phases", "deps,seed", "--job", "custom", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    runner = [line for line in lines if line.get("logger") == "dbt-runner"]
    dbt = [line for line in lines if "info" in line and "data" in line]  # dbt's own JSON events
    assert runner and dbt
    assert all(line["run_id"] == read_json(out_dir / "report.json")["run_id"] for line in runner)


def test_project_profiles_yml_is_used(
    env: dict[str, str], demo_project: Path, tmp_path: Path
) -> None:
    database = tmp_path / "from-project-profile.duckdb"
    profile = {
        "demo": {
            "target": "ci",
            "outputs": {"ci": {"type": "duckdb", "path": str(database), "threads": 2}},
        }
    }
    (demo_project / "profiles.yml").write_text(yaml.safe_dump(profile))
    rendered = Path(env.pop("DBT_RUNNER_WAREHOUSE__PATH"))  # a setting it would leave unused
    result = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("select count(*) from main.raw_customers").fetchone() == (12,)
    assert not rendered.exists()


def test_sigterm_cancels_the_query_and_reports(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres
) -> None:
    """A long model is cancelled in PostgreSQL; the run stops, reports and exits 143."""
    schema = "demo_sigterm"
    env.update(postgres.warehouse_env(schema))
    (demo_project / "models" / "marts" / "slow_model.sql").write_text(
        "select 1 as id from (select pg_sleep(120)) as slow\n"
    )
    log = out_dir.parent / "run.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "dbt_runner", "run", "--phases", "deps,seed,build,docs"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    # Bounded wait on the condition that matters: the query is running in the warehouse.
    wait_until(lambda: running_queries(postgres, "pg_sleep(120)"), 120, "slow_model's query")
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 143, log.read_text()[-3000:]
    assert time.monotonic() - sent < 30
    report = read_json(out_dir / "report.json")
    assert (report["status"], report["exit_code"]) == ("interrupted", 143)
    phases = {phase["name"]: phase["status"] for phase in report["phases"]}
    assert (phases["seed"], phases["build"], phases["docs"]) == (
        "success",
        "interrupted",
        "skipped",
    )
    # The query was cancelled in the warehouse, not left running.
    assert (
        postgres.query(
            "select count(*) from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
            "%pg_sleep(120)%",
        )[0][0]
        == 0
    )
    # What ran is in the published run folder too.
    run_dir = out_dir / "demo" / "dev" / "runs" / report["run_id"]
    assert read_json(run_dir / "report.json")["status"] == "interrupted"


@pytest.mark.parametrize(
    "module_call",
    [["-m", "dbt_runner"], ["-c", "from dbt_runner.cli import main; raise SystemExit(main())"]],
)
def test_python_module_and_console_script(env: dict[str, str], module_call: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *module_call, "version"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("dbt-runner ")
    script = Path(sys.executable).parent / "dbt-runner"
    assert (
        subprocess.run([script, "version"], env=env, capture_output=True, check=False).returncode
        == 0
    )
