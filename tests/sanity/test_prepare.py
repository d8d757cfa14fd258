"""A project baked into an image FROM the runner (examples/derived/Dockerfile): its
packages (one from a tarball served only while the image builds) and its parse made at
build time; the image then runs its job with no network at all and a read-only root
filesystem, as a task in a private subnet would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.sanity.conftest import docker, env_flags, image_of
from tests.sanity.test_jobs import writable_out
from tests.support import DEMO, ROOT, copy_project, read_json, tarball_package, with_packages

EXAMPLE = ROOT / "examples" / "derived" / "Dockerfile"
# What the tasks run with, fixed at build time too: dbt's parse depends on them.
BAKED_ENV = {"DBT_RUNNER_WAREHOUSE__PATH": "/out/warehouse.duckdb", "DEMO_FLAVOUR": "vanilla"}


@pytest.fixture(scope="module")
def baked_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    context = tmp_path_factory.mktemp("derived")
    project = copy_project(DEMO, context / "project")
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        server.expect_request("/extra_utils.tar.gz").respond_with_data(tarball_package())
        with_packages(project, server.url_for("/extra_utils.tar.gz"))
        settings = " ".join(f"{name}={value}" for name, value in BAKED_ENV.items())
        dockerfile = EXAMPLE.read_text().replace(
            'RUN ["dbt-runner", "prepare"]', f'ENV {settings}\nRUN ["dbt-runner", "prepare"]'
        )
        (project / "Dockerfile").write_text(dockerfile)
        (project / ".dockerignore").write_text("Dockerfile\ntarget\ndbt_packages\n")
        tag = f"dbt-runner-baked:{uuid.uuid4().hex[:8]}"
        built = docker(
            "build", "--network", "host", "--build-arg", f"RUNNER={image_of('all')}",
            "-t", tag, str(project), timeout=600,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    finally:
        server.clear()
        server.stop()  # gone before anything runs
    try:
        yield tag, project
    finally:
        docker("rmi", "-f", tag)


def offline_run(image: str, out: Path, *extra: str) -> dict[str, Any]:
    """The job with no network and a read-only root filesystem; its report."""
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "-v", f"{out}:/out", *extra, image, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report: dict[str, Any] = read_json(out / "report.json")
    return report


def test_a_baked_image_runs_its_job_offline_from_its_parse(
    baked_image: tuple[str, Path], tmp_path: Path
) -> None:
    image, _ = baked_image
    report = offline_run(image, writable_out(tmp_path))
    assert report["status"] == "success" and report["env"] == "prod"
    assert (report["prepared"]["parse"], report["prepared"]["packages"]) == (True, True)
    deps = next(p for p in report["phases"] if p["name"] == "deps")
    assert deps["status"] == "skipped" and "installed into the image" in deps["message"]
    answer = next(n for n in report["nodes"] if n["unique_id"] == "model.demo.answer")
    assert answer["status"] == "success"  # the tarball's macro, baked


def test_a_change_after_prepare_is_parsed_normally(
    baked_image: tuple[str, Path], tmp_path: Path
) -> None:
    image, project = baked_image
    changed = tmp_path / "answer.sql"
    changed.write_text((project / "models/marts/answer.sql").read_text() + "-- changed\n")
    mount = f"{changed}:/opt/dbt-runner/project/models/marts/answer.sql:ro"
    report = offline_run(image, writable_out(tmp_path), "-v", mount)
    assert report["status"] == "success"
    assert report["prepared"] == report["prepared"] | {
        "parse": False,
        "packages": True,  # still offline: the packages did not change
        "reason": "the project changed since prepare (models/marts/answer.sql)",
    }


def test_another_value_of_an_env_var_the_parse_read_is_detected(
    baked_image: tuple[str, Path], tmp_path: Path
) -> None:
    image, _ = baked_image
    out = writable_out(tmp_path)
    report = offline_run(image, out, *env_flags({"DEMO_FLAVOUR": "chocolate"}))
    assert report["prepared"]["parse"] is False
    assert report["prepared"]["reason"] == (
        "the environment variable(s) DEMO_FLAVOUR differ from prepare time"
    )
    plan = docker("run", "--rm", "--network", "none", "-e", "DEMO_FLAVOUR=chocolate", image, "plan")
    assert "# baked parse: not used (the environment variable(s) DEMO_FLAVOUR" in plan.stdout


def test_a_project_mounted_over_a_baked_image_is_said_not_to_be_the_baked_one(
    baked_image: tuple[str, Path], tmp_path: Path
) -> None:
    """What prepare baked lives outside the project folder: a whole project mounted over
    the image's (the README's way to run one) does not hide it, and the run says why
    the baked parse was not used, as the deployment page promises."""
    image, _ = baked_image
    mounted = copy_project(DEMO, tmp_path / "project")
    mount = f"{mounted}:/opt/dbt-runner/project:ro"
    report = offline_run(image, writable_out(tmp_path), "-v", mount)
    assert report["status"] == "success"
    prepared = report["prepared"]
    assert prepared["folder"] == "/opt/dbt-runner/prepared" and prepared["parse"] is False
    assert prepared["reason"].startswith("the project changed since prepare ("), prepared
