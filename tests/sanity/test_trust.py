"""The image when things go wrong, the way users run it: their own project mounted
read-only, images built FROM it, settings that point nowhere, a full disk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.sanity.conftest import docker, env_flags, image_of
from tests.support import DEMO, copy_project, read_json

PROJECT_IN_IMAGE = "/opt/dbt-runner/project"


def writable_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir(parents=True)
    out.chmod(0o777)
    return out


def own_profile(project: Path, path: str) -> None:
    """The project ships its own profiles.yml: DuckDB, at a path relative to it."""
    profile = {"demo": {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": path}}}}
    (project / "profiles.yml").write_text(yaml.safe_dump(profile))


def test_read_only_project_with_its_own_relative_duckdb_path(image: str, tmp_path: Path) -> None:
    """As the README says to run your project: mounted read-only at the working folder.
    Its profile's relative DuckDB path lands in the runner's scratch copy, which goes with
    the container: the run says so, and keeps no state for it."""
    project = copy_project(DEMO, tmp_path / "project")
    own_profile(project, "demo.duckdb")
    out, state = writable_out(tmp_path), writable_out(tmp_path / "state")
    mounts = ["-v", f"{project}:{PROJECT_IN_IMAGE}:ro", "-v", f"{out}:/out"]
    mounts += ["-v", f"{state}:/state", "-e", "DBT_RUNNER_STATE_URL=file:///state"]
    plan = docker("run", "--rm", *mounts, image, "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "read-only: dbt runs a copy in /tmp/dbt-runner/projects/demo-" in plan.stdout
    copy = plan.stdout.split("dbt runs a copy in ")[1].split()[0]
    assert f"--project-dir {copy}" in plan.stdout and f"--profiles-dir {copy}" in plan.stdout
    assert f"# target: duckdb {copy}/demo.duckdb" in plan.stdout
    assert "inside the runner's scratch folder" in plan.stdout
    result = docker("run", "--rm", *mounts, image, "run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_json(out / "report.json")
    assert report["status"] == "success"
    assert any(f"{copy}/demo.duckdb is inside" in warning for warning in report["warnings"])
    assert "scratch folder" in (out / "summary.md").read_text()
    assert not list(state.rglob("latest.json"))  # no state for a database that is gone
    assert not (project / "demo.duckdb").exists()  # nothing written into the mount


def test_a_derived_images_duckdb_file_on_its_own_layer_never_becomes_state(
    image: str, tmp_path: Path
) -> None:
    """A project baked into an image, its profile's DuckDB path relative: the database
    lands on the container's writable layer and goes with it. Before, two runs promoted
    a state whose tables the next container did not have."""
    context = tmp_path / "derived"
    project = copy_project(DEMO, context / "project")
    own_profile(project, "demo.duckdb")
    (context / "Dockerfile").write_text(
        f"FROM {image}\nCOPY --chown=10001:0 project {PROJECT_IN_IMAGE}\n"
    )
    tag = f"dbt-runner-layer:{uuid.uuid4().hex[:8]}"
    built = docker("build", "-q", "-t", tag, str(context), timeout=300)
    assert built.returncode == 0, built.stderr
    out, state = writable_out(tmp_path), writable_out(tmp_path / "state")
    mounts = ["-v", f"{out}:/out", "-v", f"{state}:/state"]
    mounts += ["-e", "DBT_RUNNER_STATE_URL=file:///state"]
    try:
        plan = docker("run", "--rm", *mounts, tag, "plan")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert f"# target: duckdb {PROJECT_IN_IMAGE}/demo.duckdb" in plan.stdout
        assert "on the container's own filesystem" in plan.stdout
        for _ in range(2):
            result = docker("run", "--rm", *mounts, tag, "run")
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr
            report = read_json(out / "report.json")
            [warning] = [w for w in report["warnings"] if "container's own filesystem" in w]
            assert f"{PROJECT_IN_IMAGE}/demo.duckdb" in warning and "mount a volume" in warning
            assert report["state"]["promoted"] is False
        assert not list(state.rglob("latest.json"))
        # Where the README says the database lives, on a volume: state is kept.
        volume = ["-v", f"{writable_out(tmp_path / 'db')}:/db"]
        kept = docker(
            "run",
            "--rm",
            *mounts,
            *volume,
            "-e",
            "DBT_RUNNER_PROFILE_SOURCE=rendered",
            "-e",
            "DBT_RUNNER_WAREHOUSE__PATH=/db/demo.duckdb",
            tag,
            "run",
        )
        assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr
        assert list(state.rglob("latest.json"))
    finally:
        docker("rmi", "-f", tag)


@pytest.fixture
def derived_image(tmp_path: Path) -> Iterator[str]:
    """An image FROM the redshift variant with a project whose profile is DuckDB's."""
    context = tmp_path / "derived"
    project = copy_project(DEMO, context / "project")
    own_profile(project, "demo.duckdb")
    (context / ".dockerignore").write_text("project/target\nproject/dbt_packages\n")
    (context / "Dockerfile").write_text(
        f"FROM {image_of('redshift')}\nCOPY --chown=10001:0 project {PROJECT_IN_IMAGE}\n"
    )
    tag = f"dbt-runner-derived:{uuid.uuid4().hex[:8]}"
    built = docker("build", "-q", "-t", tag, str(context), timeout=300)
    assert built.returncode == 0, built.stderr
    try:
        yield tag
    finally:
        docker("rmi", "-f", tag)


def test_derived_image_whose_project_profile_needs_another_adapter(derived_image: str) -> None:
    result = docker("run", "--rm", derived_image)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "the dbt-duckdb adapter is not installed here" in line
    assert "(all)" in line and "DBT_RUNNER_PROFILE_SOURCE=rendered" in line
    # The setting that fixes it: the rendered redshift profile instead of the project's.
    warehouse = {
        "DBT_RUNNER_PROFILE_SOURCE": "rendered",
        "DBT_RUNNER_WAREHOUSE__TYPE": "redshift",
        "DBT_RUNNER_WAREHOUSE__HOST": "cluster.example",
        "DBT_RUNNER_WAREHOUSE__USER": "u",
        "DBT_RUNNER_WAREHOUSE__DATABASE": "dev",
    }
    check = docker("run", "--rm", *env_flags(warehouse), derived_image, "check", "--json")
    assert check.returncode == 0, check.stderr
    assert '"profile": "rendered for redshift' in check.stdout


def test_work_dir_the_image_user_cannot_write(image: str, tmp_path: Path) -> None:
    out = writable_out(tmp_path)
    env = {
        "DBT_RUNNER_PROJECT_DIR": "/opt/dbt-runner/examples/demo",
        "DBT_RUNNER_WORK_DIR": "/usr/x",
    }
    result = docker("run", "--rm", "-v", f"{out}:/out", *env_flags(env), image)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "DBT_RUNNER_WORK_DIR='/usr/x' is not a writable folder (Permission denied)" in line
    assert read_json(out / "report.json")["status"] == "config_error"


def test_full_disk_under_the_work_folder(image: str, tmp_path: Path) -> None:
    """A tmpfs too small for dbt's target folder: exit 4, the report on /out, the last
    good state untouched."""
    out = writable_out(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    env = {
        "DBT_RUNNER_PROJECT_DIR": "/opt/dbt-runner/examples/demo",
        "DBT_RUNNER_WAREHOUSE__PATH": "/out/demo.duckdb",
        "DBT_RUNNER_STATE_URL": "file:///state",
    }
    mounts = ["-v", f"{out}:/out", "-v", f"{state}:/state", *env_flags(env)]
    good = docker("run", "--rm", *mounts, image)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr
    pointer = (state / "demo" / "dev" / "state" / "latest.json").read_bytes()
    full = docker("run", "--rm", "--tmpfs", "/tmp:rw,size=1m", *mounts, image)
    assert full.returncode == 4, full.stdout[-3000:] + full.stderr
    assert "Traceback" not in full.stderr
    assert "no space left on device" in full.stderr.lower()
    report = read_json(out / "report.json")
    assert report["status"] == "infra_error"
    assert (state / "demo" / "dev" / "state" / "latest.json").read_bytes() == pointer
