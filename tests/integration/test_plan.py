"""`plan` prints what `run` does: for every job kind, the argv of each dbt command a
real run hands dbt's runner (recorded in the process, tests/record_dbt.py) equals the
commands `plan --json` listed before it, in order. The listings a run makes besides its
steps (`dbt ls` for a guard or the changes, inline compiles for the impact and the check
before promoting, the children step's compile of the changed models) are not steps, and
not compared: no job phase is a `compile`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, run_cli


def planned(env: dict[str, str], *args: str) -> list[list[str]]:
    result = run_cli("plan", "--json", *args, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    steps: list[dict[str, Any]] = json.loads(result.stdout)
    return [step["args"] for step in steps if step["kind"] in ("dbt", "parse")]


def recorded(env: dict[str, str], log: Path, *args: str) -> tuple[int, list[list[str]]]:
    """A real run, every argv dbt's runner received; the step's own (not listings)."""
    log.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "tests.record_dbt", str(log), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    steps = [c for c in calls if c[0] not in ("ls", "compile")]
    return result.returncode, steps


def same(env: dict[str, str], log: Path, verb: str, *args: str, code: int = 0) -> None:
    """plan --json, then the run: the same dbt commands, in the same order."""
    expected = planned(env, *args, *(("--retry",) if verb == "retry" else ()))
    got, calls = recorded(env, log, verb, *args)
    assert got == code, f"{verb} exited {got}"
    assert calls == expected
    assert calls, "no dbt command was recorded: the comparison would hold vacuously"


def with_run_id(env: dict[str, str], run_id: str) -> dict[str, str]:
    return env | {"DBT_RUNNER_RUN_ID": run_id}  # the scratch paths in each argv are the run's


def test_a_full_job_and_custom_phases(env: dict[str, str], tmp_path: Path) -> None:
    same(with_run_id(env, "plan-full"), tmp_path / "calls", "run")
    custom = with_run_id(env, "plan-custom")
    same(
        custom, tmp_path / "calls", "run", "--job", "custom", "--phases", "deps,seed,run,test,docs"
    )
    same(
        custom | {"DBT_RUNNER_RUN_ID": "plan-lint"},
        tmp_path / "calls",
        "run",
        "--job",
        "custom",
        "--phases",
        "deps,lint",
    )


@pytest.mark.parametrize("job", ["slim", "fresh"])
def test_a_slim_and_a_fresh_job_with_state(
    env: dict[str, str], demo_project: Path, tmp_path: Path, job: str
) -> None:
    env |= {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    # The state, then (the demo's sources are its seeds, loaded by the first build) the
    # freshness of every source: a build that adds none a plan cannot know.
    for _ in range(2):
        assert run_cli("run", "--job", job, env=env).returncode == 0
    orders = demo_project / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text().replace("select", "select 1 as added,", 1))
    same(with_run_id(env, f"plan-{job}"), tmp_path / "calls", "run", "--job", job)


def test_a_pull_request_with_its_impact(env: dict[str, str], tmp_path: Path) -> None:
    env |= {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    assert run_cli("run", env=env | {"DBT_RUNNER_ENV": "prod"}).returncode == 0
    pr_env = {"DBT_RUNNER_ENV": "ci", "DBT_RUNNER_PR": "7"}
    pr_env |= {"DBT_RUNNER_VARS": '{"raw_schema": "main"}'}  # production's raw data
    pr = with_run_id(env | pr_env, "plan-pr")
    same(pr, tmp_path / "calls", "run")


def test_a_retry(env: dict[str, str], demo_project: Path, tmp_path: Path) -> None:
    orders = demo_project / "models" / "marts" / "orders.sql"
    good = orders.read_text()
    orders.write_text(good.replace("o.status,", "o.no_such_column,"))
    assert run_cli("run", env=env).returncode == 1
    orders.write_text(good)
    same(with_run_id(env, "plan-retry"), tmp_path / "calls", "retry")


def planned_nodes(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    result = run_cli("plan", "--json", "--nodes", *args, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    steps: list[dict[str, Any]] = json.loads(result.stdout)
    return [step for step in steps if "nodes" in step]


@pytest.mark.parametrize(
    "job", [("--exclude", "daily_revenue"), ("--job", "slim")], ids=["full", "slim"]
)
def test_plan_nodes_are_the_nodes_the_run_then_executes(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path, job: tuple[str, ...]
) -> None:
    """`plan --nodes` lists each node step's nodes as `dbt ls` selects them, with the
    state and the children step as the run has them; the run then executes exactly
    those (its report), and their asset keys are Dagster's names for what it built."""
    env |= {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    assert run_cli("run", env=env).returncode == 0
    orders = demo_project / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text().replace("o.status,", "o.status, 'v2' as version,"))
    steps = planned_nodes(env, *job)
    assert run_cli("run", *job, env=env).returncode == 0
    report = json.loads((out_dir / "report.json").read_text())
    for step in steps:
        executed = {n["unique_id"] for n in report["nodes"] if n["phase"] == step["phase"]}
        assert set(step["nodes"]) == executed and executed, step["phase"]
    assets = ("model", "seed", "snapshot")
    built = {n["name"] for n in report["nodes"] if n["resource_type"] in assets}
    assert {key for step in steps for key in step["assets"]} == built
    if "slim" in job:
        assert "stg_orders" not in built and "orders" in built  # deferred: not listed
    else:
        assert "daily_revenue" not in built and "stg_orders" in built


def test_plan_nodes_of_a_fresh_job_are_decided_in_the_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    env |= {"DBT_RUNNER_STATE_URL": str(tmp_path / "state")}
    assert run_cli("run", "--job", "fresh", env=env).returncode == 0
    steps = planned_nodes(env, "--job", "fresh")
    assert steps and all("assets" not in step for step in steps)
    assert {step["nodes"] for step in steps} == {"decided in the run, after the sources' freshness"}
    text = run_cli("plan", "--nodes", "--job", "fresh", env=env)
    assert "nodes: decided in the run, after the sources' freshness" in text.stdout


def test_plan_nodes_installs_the_packages_first_as_the_run_does(
    env: dict[str, str], demo_project: Path
) -> None:
    """A fresh container has none of the project's packages installed (the run's deps
    step installs them); plan --nodes did not parse without them."""
    assert not (demo_project / "dbt_packages").exists()
    steps = planned_nodes(env)
    assert steps and all(isinstance(step["nodes"], list) and step["nodes"] for step in steps)
    assert "model.demo.orders" in next(s for s in steps if s["phase"] == "build")["nodes"]
