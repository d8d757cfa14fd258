"""Dagster Pipes from the REAL image: a real Dagster materializes the example assets
(docker/deploy/dagster/assets.py) by running the image through PipesDockerClient."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_dagster import materialize
from tests.support import DEMO, clean_env, copy_project, run_cli


def image_env(image: str, tmp_path: Path) -> dict[str, str]:
    """The image's own demo, described for dagster-dbt by the same project's manifest."""
    project = copy_project(DEMO, tmp_path / "demo")
    local = clean_env(
        DBT_RUNNER_PROJECT_DIR=str(project), DBT_RUNNER_WORK_DIR=str(tmp_path / "work")
    )
    for command in ("deps", "parse"):  # dagster-dbt's manifest, from the same project
        assert run_cli("dbt", "--", command, env=local).returncode == 0
    env = clean_env(
        DAGSTER_DBT_MANIFEST=str(project / "target" / "manifest.json"),
        DAGSTER_DBT_RUNNER_IMAGE=image,
        # The image's own copy of the demo; its reports inside the container.
        DBT_RUNNER_PROJECT_DIR="/opt/dbt-runner/examples/demo",
        DBT_RUNNER_ARTIFACTS_URL="/tmp/out",
    )
    return env


def test_dagster_runs_the_image_and_sees_every_asset(image: str, tmp_path: Path) -> None:
    found = materialize(image_env(image, tmp_path), "docker")
    assert found["success"], found["failures"] + [found["stderr"][-3000:]]
    keys = [m["key"] for m in found["materializations"]]
    assert sorted(keys) == sorted(found["asset_keys"]) and len(keys) == len(set(keys))
    assert all(m["metadata"]["dbt_runner_job"] == "full" for m in found["materializations"])
    assert len(found["checks"]) == len(found["check_names"])
    assert all(check["passed"] for check in found["checks"])
    assert any("phase build: success" in log["message"] for log in found["logs"])


def test_the_slim_schedule_asks_the_image_which_assets_its_job_builds(
    image: str, tmp_path: Path
) -> None:
    """`plan --nodes` in the image, through the example's schedule: a slim job without a
    state builds everything, so the tick asks for every asset, and Dagster's run of
    them succeeds."""
    env = image_env(image, tmp_path) | {"DBT_RUNNER_JOB": "slim", "DBT_RUNNER_STATE_URL": "/tmp/s"}
    found = materialize(env, "docker-changes")
    assert found["success"], found["failures"] + [found["stderr"][-3000:]]
    assert found["tick"]["asked"] == found["asset_keys"]
    assert sorted(m["key"] for m in found["materializations"]) == found["asset_keys"]
