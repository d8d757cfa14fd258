"""Two jobs of one env at once: one builds, the other skips, waits or fails as
DBT_RUNNER_CONCURRENCY says; a killed run's lease expires. Real dbt on PostgreSQL, the
lease in S3 (moto server, conditional writes), a real webhook receiver."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.support import (
    SLOW,
    Moto,
    Postgres,
    Started,
    add_slow_model,
    delivered,
    hook,
    read_json,
    run_cli,
    running_queries,
    wait_until,
)


class Lease:
    """The env's lease object in the bucket, as the test reads it."""

    def __init__(self, moto: Moto, bucket: str) -> None:
        self.s3, self.bucket, self.key = moto.client("s3"), bucket, "state/demo/dev/lease.json"

    def holder(self) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        data: dict[str, Any] = json.loads(body)
        return data


@pytest.fixture
def shared_env(
    env: dict[str, str], demo_project: Path, postgres: Postgres, moto: Moto
) -> tuple[dict[str, str], Lease]:
    """Two jobs of the same project and env: the same schema, the same state bucket."""
    bucket = "lease-" + uuid.uuid4().hex[:8]
    moto.client("s3").create_bucket(Bucket=bucket)
    env |= moto.env | postgres.warehouse_env("lease_" + uuid.uuid4().hex[:6])
    env |= {"DBT_RUNNER_STATE_URL": f"s3://{bucket}/state"}
    return env, Lease(moto, bucket)


def hold_the_env(
    env: dict[str, str], lease: Lease, postgres: Postgres, log: Path, sleep: str = SLOW
) -> Started:
    """A first job, inside its slow model (waiting in `sleep`): it holds the lease."""
    first = Started(env | {"DBT_RUNNER_RUN_ID": "first-" + uuid.uuid4().hex[:6]}, log)
    wait_until(lambda: running_queries(postgres, sleep), 180, "the first job's slow model")
    holder = lease.holder()
    assert holder is not None and holder["run_id"].startswith("first-")
    return first


@pytest.mark.parametrize("mode", ["skip", "fail"])
def test_the_second_job_skips_or_fails_while_the_first_builds(
    mode: str,
    shared_env: tuple[dict[str, str], Lease],
    demo_project: Path,
    postgres: Postgres,
    tmp_path: Path,
    httpserver: HTTPServer,
) -> None:
    env, lease = shared_env
    add_slow_model(demo_project)
    first = hold_the_env(env, lease, postgres, tmp_path / "first.log")
    holder = lease.holder()
    assert holder is not None
    second_out = tmp_path / "second-out"
    second_env = env | hook(httpserver) | {"DBT_RUNNER_ARTIFACTS_URL": str(second_out)}
    second = run_cli("run", "--concurrency", mode, env=second_env)
    report = read_json(second_out / "report.json")
    if mode == "skip":
        assert second.returncode == 0, second.stdout[-3000:]
        assert report["status"] == "skipped" and report["phases"] == []
        assert f"run {holder['run_id']} (full, started" in report["skipped"]
        [payload] = delivered(httpserver)
        assert payload["status"] == "skipped" and holder["run_id"] in payload["skipped"]
        assert "Skipped" in (second_out / "summary.md").read_text()
    else:
        assert second.returncode == 4, second.stdout[-3000:]
        assert report["status"] == "infra_error" and report["phases"] == []
        line = second.stderr.strip().splitlines()[-1]
        assert f"run {holder['run_id']}" in line and "DBT_RUNNER_CONCURRENCY=wait" in line
    assert lease.holder() == holder  # the first job still holds the env, untouched
    first.process.send_signal(signal.SIGTERM)
    code, output = first.finish(timeout=60)
    assert code == 143, output[-3000:]
    assert lease.holder() is None  # given back when it finished


def test_the_second_job_waits_for_the_first(
    shared_env: tuple[dict[str, str], Lease],
    demo_project: Path,
    postgres: Postgres,
    out_dir: Path,
    tmp_path: Path,
) -> None:
    env, lease = shared_env
    add_slow_model(demo_project, sleep="pg_sleep(8)")
    first = hold_the_env(env, lease, postgres, tmp_path / "first.log", sleep="pg_sleep(8)")
    second_out = tmp_path / "second-out"
    second_env = env | {"DBT_RUNNER_ARTIFACTS_URL": str(second_out)}
    second = Started(second_env, tmp_path / "second.log", "--concurrency", "wait")
    code, output = first.finish(timeout=180)
    assert code == 0, output[-3000:]
    code, output = second.finish(timeout=180)
    assert code == 0, output[-3000:]
    assert "waiting for it (DBT_RUNNER_CONCURRENCY=wait)" in output
    first_report, second_report = (
        read_json(out_dir / "report.json"),
        read_json(second_out / "report.json"),
    )
    assert second_report["status"] == "success"
    # One after the other: the second built only once the first had finished.
    builds = [p for p in second_report["phases"] if p["name"] == "build"]
    assert builds and builds[0]["started_at"] >= first_report["finished_at"]
    assert lease.holder() is None


def test_a_killed_runs_lease_expires_and_is_taken_over(
    shared_env: tuple[dict[str, str], Lease],
    demo_project: Path,
    postgres: Postgres,
    out_dir: Path,
    tmp_path: Path,
) -> None:
    env, lease = shared_env
    env["DBT_RUNNER_LEASE_TTL_S"] = "20"
    add_slow_model(demo_project)
    first = hold_the_env(env, lease, postgres, tmp_path / "first.log")
    [pid] = running_queries(postgres, SLOW)
    first.process.send_signal(signal.SIGKILL)
    first.finish(timeout=60)
    postgres.query("select pg_terminate_backend(%s)", pid)
    holder = lease.holder()
    assert holder is not None  # a killed run gives nothing back

    add_slow_model(demo_project, sleep="pg_sleep(0)")
    expires = datetime.fromisoformat(holder["expires_at"])
    # Right after the kill, nothing can tell a dead holder from a busy one: it skips.
    early = run_cli("run", env=env)
    assert early.returncode == 0 and read_json(out_dir / "report.json")["status"] == "skipped"
    assert datetime.now(UTC) < expires  # (the lease outlived that run: the skip was its)
    wait_until(lambda: datetime.now(UTC) > expires, 60, "the killed run's lease to expire")
    after = run_cli("run", env=env)
    assert after.returncode == 0, after.stdout[-3000:]
    assert f"taken over from run {holder['run_id']}" in after.stdout
    assert read_json(out_dir / "report.json")["status"] == "success"
    assert lease.holder() is None
