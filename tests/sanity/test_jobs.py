"""Functional round trips: the real image runs real jobs (after Kafka's docker sanity tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.sanity.conftest import DOCKER, docker, env_flags, image_of
from tests.support import (
    DEMO,
    PHASES_OK,
    ROOT,
    Postgres,
    copy_project,
    read_json,
    running_queries,
    wait_until,
)

DEMO_IN_IMAGE = "/opt/dbt-runner/examples/demo"


def writable_out(tmp_path: Path, uid: int | None = None) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    if uid is None:
        out.chmod(0o777)
    else:
        os.chown(out, uid, uid)
    return out


DEMO_ENV = {"DBT_RUNNER_PROJECT_DIR": DEMO_IN_IMAGE}


def demo_args(out: Path, *extra: str) -> list[str]:
    env = DEMO_ENV | {"DBT_RUNNER_WAREHOUSE__PATH": "/out/demo.duckdb"}
    return ["run", "--rm", "-v", f"{out}:/out", *env_flags(env), *extra]


def check_demo_outputs(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = read_json(out / "report.json")
    assert report["status"] == "success", report.get("errors")
    assert [(p["name"], p["status"]) for p in report["phases"]] == PHASES_OK
    root = ET.parse(out / "junit.xml").getroot()
    assert int(root.get("tests", "0")) == 28 and root.get("failures") == "0"
    assert (out / "demo" / "dev" / "docs" / "index.html").stat().st_size > 10_000
    assert (out / "demo" / "dev" / "docs" / "catalog.json").is_file()
    return report


def test_demo_job_as_the_image_user(image: str, tmp_path: Path) -> None:
    out = writable_out(tmp_path)
    result = docker(*demo_args(out), image)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    check_demo_outputs(out)
    assert (out / "report.json").stat().st_uid == 10001


def test_demo_job_as_an_arbitrary_user(image: str, tmp_path: Path) -> None:
    """Kubernetes and CI runners pick the UID; outputs belong to it."""
    out = writable_out(tmp_path, uid=4242)
    result = docker(*demo_args(out, "--user", "4242:4242"), image)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    check_demo_outputs(out)
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in out.rglob("*")}
    assert owners == {(4242, 4242)}


def test_an_output_folder_docker_made_as_root_says_to_run_as_its_owner(
    image: str, tmp_path: Path
) -> None:
    """`-v "$PWD/out:/out"` with no out/ yet: docker creates it as root, and the image's
    user cannot write it. The error says what to do (the README's command has --user)."""
    out = tmp_path / "out"
    out.mkdir(mode=0o755)  # root's, as docker makes it
    result = docker(*demo_args(out), image)
    assert result.returncode == 4, result.stdout[-3000:] + result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert "cannot write file:///out/" in first and "Permission denied" in first
    assert '--user "$(id -u):$(id -g)"' in first
    readme = (ROOT / "README.md").read_text()
    assert (
        'docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/opt/dbt-runner/project:ro"' in readme
    )


def test_demo_job_with_a_read_only_root_filesystem(image: str, tmp_path: Path) -> None:
    out = writable_out(tmp_path)
    result = docker(*demo_args(out, "--read-only", "--tmpfs", "/tmp:rw,exec,size=512m"), image)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    check_demo_outputs(out)
    assert "read-only: running from a copy" in result.stdout


def test_read_only_without_an_output_volume_fails_clearly(image: str) -> None:
    env = DEMO_ENV | {"DBT_RUNNER_PHASES": "deps,seed", "DBT_RUNNER_JOB": "custom"}
    result = docker("run", "--rm", "--read-only", "--tmpfs", "/tmp", *env_flags(env), image)
    assert result.returncode == 4, result.stdout[-3000:] + result.stderr
    errors = result.stderr.strip().splitlines()
    assert "cannot write file:///out/" in errors[0]
    assert "cannot write the report to /out (Read-only file system)" in errors[1]
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_job_on_postgres_over_the_host_network(
    image: str, tmp_path: Path, postgres: Postgres
) -> None:
    out = writable_out(tmp_path)
    env = postgres.warehouse_env("sanity_demo")
    flags = env_flags(env)
    result = docker(*demo_args(out, "--network", "host", *flags), image)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = check_demo_outputs(out)
    assert report["adapter"] == "postgres"
    assert postgres.query("select count(*) from sanity_demo.customers") == [(12,)]
    assert postgres.password not in result.stdout + result.stderr


def test_bad_configuration_exits_3_with_one_line(image: str) -> None:
    result = docker("run", "--rm", *env_flags(DEMO_ENV | {"DBT_RUNNER_JOB": "nightly"}), image)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "dbt-runner: error: DBT_RUNNER_JOB='nightly': input should be "
        "'full', 'slim', 'fresh' or 'custom'"
    ]
    # No project mounted at the image's default folder, and a second problem named too.
    missing = docker("run", "--rm", "-e", "DBT_RUNNER_THREADS=0", image)
    assert missing.returncode == 3
    assert missing.stderr.strip().splitlines() == [
        "dbt-runner: error: DBT_RUNNER_PROJECT_DIR='.': no dbt_project.yml in "
        "/opt/dbt-runner/project; set it to your dbt project's folder "
        "(also invalid: DBT_RUNNER_THREADS)"
    ]


def test_sigterm_stops_the_container_with_a_report(
    image: str, tmp_path: Path, postgres: Postgres
) -> None:
    project = copy_project(DEMO, tmp_path / "project")
    (project / "models" / "marts" / "slow_model.sql").write_text(
        "select 1 as id from (select pg_sleep(300)) as slow\n"
    )
    out = writable_out(tmp_path)
    env = postgres.warehouse_env("sanity_sigterm")
    flags = env_flags(env)
    name = f"dbt-runner-sigterm-{os.getpid()}"
    log = tmp_path / "container.log"
    process = subprocess.Popen(
        [
            DOCKER,
            "run",
            "--name",
            name,
            "--network",
            "host",
            "-v",
            f"{out}:/out",
            "-v",
            f"{project}:/opt/dbt-runner/project:ro",
            *flags,
            image,
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        # Bounded wait on the condition that matters: the query runs in the warehouse.
        wait_until(lambda: running_queries(postgres, "pg_sleep(300)"), 180, "slow_model's query")
        sent = time.monotonic()
        docker("kill", "--signal", "TERM", name, check=True)
        process.wait(timeout=60)
        assert time.monotonic() - sent < 30, log.read_text()[-3000:]
        state = json.loads(docker("inspect", name, check=True).stdout)[0]["State"]
        assert state["ExitCode"] in (143, 130)
    finally:
        docker("rm", "-f", name)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    report = read_json(out / "report.json")
    assert report["status"] == "interrupted"
    phases = {phase["name"]: phase["status"] for phase in report["phases"]}
    assert phases["build"] == "interrupted" and phases["seed"] == "success"


def test_docker_stop_with_a_deaf_webhook_ends_inside_its_grace(
    image: str, tmp_path: Path, postgres: Postgres
) -> None:
    """`docker stop` gives a container 10 s before SIGKILL. With a webhook that never
    answers, the runner used to be killed while notifying (exit 137, a report saying
    143, the lease still held: the next job within its TTL was skipped, exit 0)."""
    project = copy_project(DEMO, tmp_path / "project")
    (project / "models" / "marts" / "slow_model.sql").write_text(
        "select 1 as id from (select pg_sleep(300)) as slow\n"
    )
    out = writable_out(tmp_path)
    deaf = socket.socket()  # accepts connections, never answers
    deaf.bind(("127.0.0.1", 0))
    deaf.listen(16)
    url = f"http://127.0.0.1:{deaf.getsockname()[1]}/hook"
    env = postgres.warehouse_env("sanity_stop") | {
        "DBT_RUNNER_STATE_URL": "file:///out/state",
        "DBT_RUNNER_NOTIFY__WEBHOOK_URL": url,
    }
    mounts = ["--network", "host", "-v", f"{out}:/out"]
    mounts += ["-v", f"{project}:/opt/dbt-runner/project:ro", *env_flags(env)]
    name = f"dbt-runner-stop-{os.getpid()}"
    process = subprocess.Popen(
        [DOCKER, "run", "--name", name, *mounts, image],
        stdout=(tmp_path / "container.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: running_queries(postgres, "pg_sleep(300)"), 180, "slow_model's query")
        stopped = docker("stop", name, timeout=60)  # docker's own default grace: 10 s
        assert stopped.returncode == 0, stopped.stderr
        process.wait(timeout=60)
        state = json.loads(docker("inspect", name, check=True).stdout)[0]["State"]
    finally:
        deaf.close()
        docker("rm", "-f", name)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    report = read_json(out / "report.json")
    assert state["ExitCode"] == report["exit_code"] == 143, (tmp_path / "container.log").read_text()
    assert report["finishing"] == [] and not state["OOMKilled"]
    assert [n["channel"] for n in report["notifications"]] == ["webhook"]
    assert not list((out / "state").rglob("lease.json"))
    (project / "models" / "marts" / "slow_model.sql").unlink()
    again = docker("run", "--rm", *mounts, image, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert read_json(out / "report.json")["status"] == "success"  # not skipped


@pytest.mark.parametrize("variant", ["redshift", "bigquery"])
def test_variant_parses_the_demo_with_its_adapter(variant: str, tmp_path: Path) -> None:
    """No warehouse here for these two: parsing needs no connection, and proves the
    adapter, its macros and the rendered profile work together."""
    warehouse = {
        "redshift": {
            "DBT_RUNNER_WAREHOUSE__HOST": "cluster.example",
            "DBT_RUNNER_WAREHOUSE__USER": "u",
            "DBT_RUNNER_WAREHOUSE__DATABASE": "dev",
        },
        "bigquery": {
            "DBT_RUNNER_WAREHOUSE__PROJECT": "my-gcp-project",
            "DBT_RUNNER_WAREHOUSE__SCHEMA": "analytics",
        },
    }[variant]
    flags = env_flags(DEMO_ENV | {"DBT_RUNNER_WAREHOUSE__TYPE": variant} | warehouse)
    result = docker("run", "--rm", *flags, image_of(variant), "dbt", "--", "parse")
    # deps has not run in this container: parse must say so, after the adapter loaded.
    assert f"Registered adapter: {variant}=" in result.stdout, result.stdout[-2000:]
    script = "dbt-runner dbt -- deps && dbt-runner dbt -- parse"
    deps_then_parse = docker(
        "run", "--rm", *flags, "--entrypoint", "sh", image_of(variant), "-c", script
    )
    assert deps_then_parse.returncode == 0, deps_then_parse.stdout[-3000:]
    # And the other variants' adapters are refused before anything runs.
    other = docker("run", "--rm", *env_flags(DEMO_ENV), image_of(variant))
    assert other.returncode == 3
    assert "the dbt-duckdb adapter is not installed here" in other.stderr


def test_lint_in_the_image(image: str, tmp_path: Path) -> None:
    """SQLFluff and its dbt templater are in the image: the demo lints clean, and a
    badly written model is found."""
    out = writable_out(tmp_path)
    clean = docker(*demo_args(out), image, "lint")
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr
    lint = read_json(out / "report.json")["lint"]
    assert len(lint["files"]) == 6 and lint["findings"] == []
    assert (out / "lint.sarif").is_file()
    project = copy_project(DEMO, tmp_path / "project")
    (project / "models" / "marts" / "bad_style.sql").write_text(
        "select\n    order_id,ORDER_DATE\nfrom {{ ref('stg_orders') }}\n"
    )
    mount = ["-v", f"{project}:/opt/dbt-runner/project:ro"]
    dirty = docker("run", "--rm", "-v", f"{out}:/out", *mount, image, "lint")
    assert dirty.returncode == 1, dirty.stdout[-3000:] + dirty.stderr
    found = {f["file"] for f in read_json(out / "report.json")["lint"]["findings"]}
    assert found == {"models/marts/bad_style.sql"}
