"""The GitHub Action (action.yml) as a workflow runs it: its step script, with the
inputs GitHub would set, on a checked-out repository, against the real image."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from junitparser import JUnitXml

from tests.integration.test_failures import add_failures
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
    (temp / "step.log").write_text(result.stdout)  # what the workflow's log shows
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


def test_failed_nodes_are_annotated_at_their_files_in_the_repository(
    image: str, tmp_path: Path
) -> None:
    """The project in a subfolder of the repository (`project-dir: analytics`): every
    path the workflow sees (annotations, junit.xml) is from the repository's root, and
    each failed node is an annotation at its file, not only the lint findings."""
    repo, temp = tmp_path / "repo", tmp_path / "temp"
    temp.mkdir()
    project = copy_project(DEMO, repo / "analytics")
    add_failures(project)
    code, outputs, _ = run_step(repo, temp, image=image)
    assert (code, outputs["status"]) == (1, "failed")
    annotations = [
        line for line in (temp / "step.log").read_text().splitlines() if line.startswith("::error ")
    ]
    files = {line.split("file=")[1].split(",")[0] for line in annotations}
    assert files == {
        "analytics/models/marts/broken_model.sql",
        "analytics/tests/assert_no_orders.sql",
    }
    assert all((repo / file).is_file() for file in files)
    junit = JUnitXml.fromfile(str(Path(outputs["report"]).parent / "junit.xml"))
    paths = {case._elem.get("file") for suite in junit for case in suite} - {None}
    assert paths and all(
        path.startswith("analytics/") and (repo / path).is_file() for path in paths
    )
