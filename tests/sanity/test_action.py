"""The GitHub Action (action.yml) as a workflow runs it: its step script, with the
inputs GitHub would set, on a checked-out repository, against the real image."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.sanity.conftest import DOCKER
from tests.support import DEMO, ROOT, copy_project, read_json

STEP = ROOT / "docker" / "action" / "run.sh"


def run_step(
    repo: Path, temp: Path, step_env: Mapping[str, str] | None = None, **inputs: str
) -> tuple[int, dict[str, str], str]:
    """The action's step (`step_env`: the step's own env): exit code, outputs, summary."""
    outputs, summary = temp / "outputs", temp / "summary.md"
    env = {
        "PATH": os.environ["PATH"],
        "DOCKER": DOCKER,
        "GITHUB_WORKSPACE": str(repo),
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ACTIONS": "true",
        "DBT_RUNNER_WAREHOUSE__PATH": "/out/warehouse.duckdb",  # a step's own env passes
        "INPUT_PROJECT_DIR": "analytics",
        "INPUT_GITHUB_TOKEN": "",
    }
    env |= dict(step_env or {}) | {"INPUT_" + name.upper(): value for name, value in inputs.items()}
    outputs.write_text("")
    result = subprocess.run(
        ["bash", str(STEP)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    said = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return result.returncode, said, summary.read_text() if summary.exists() else ""


def test_the_action_runs_a_job_then_a_pull_request_with_its_impact(
    image: str, tmp_path: Path
) -> None:
    repo, temp = tmp_path / "repo", tmp_path / "temp"
    temp.mkdir()
    project = copy_project(DEMO, repo / "analytics")
    state = "file:///out/state"

    code, outputs, summary = run_step(
        repo, temp, job="full", env="prod", state_url=state, image=image
    )
    assert (code, outputs["exit-code"], outputs["status"]) == (0, "0", "success")
    report = read_json(Path(outputs["report"]))
    assert (report["env"], report["job"], report["status"]) == ("prod", "full", "success")
    assert "dbt-runner demo/prod full: success" in summary
    assert (temp / "dbt-runner" / "warehouse.duckdb").is_file()  # the step's env reached it

    orders = project / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text().replace("o.status,", "o.status, 1 as version,"))
    code, outputs, _ = run_step(
        repo,
        temp,
        pr="5",
        env="ci",
        vars=json.dumps({"raw_schema": "main"}),
        state_url=state,
        image=image,
    )
    assert code == 0, outputs
    report = read_json(Path(outputs["report"]))
    assert report["pr"]["namespace"] == "main_pr_5" and report["job"] == "slim"
    impact = {m["name"]: m for m in report["impact"]["models"]}
    assert [c["name"] for c in impact["orders"]["added"]] == ["version"]
    assert impact["orders"]["by_key"]["changed"] == 0
    assert report["pr"]["comment_url"] is None  # no token, no comment


def test_a_failing_run_is_the_steps_exit_code_and_outputs(image: str, tmp_path: Path) -> None:
    repo, temp = tmp_path / "repo", tmp_path / "temp"
    temp.mkdir()
    copy_project(DEMO, repo / "analytics")
    # Settings that cannot be read: exit 3 and no report.
    code, outputs, _ = run_step(repo, temp, job="slim", image=image)  # no state URL
    assert (code, outputs["exit-code"], outputs["status"]) == (3, "3", "unknown")
    # A run that fails after it started: exit 3, its report's status.
    unmatched = {"DBT_RUNNER_UNMATCHED_SELECTION": "fail"}
    code, outputs, summary = run_step(repo, temp, unmatched, select="no_such_model", image=image)
    assert (code, outputs["exit-code"], outputs["status"]) == (3, "3", "config_error")
    assert read_json(Path(outputs["report"]))["status"] == "config_error"
    assert "config_error" in summary
