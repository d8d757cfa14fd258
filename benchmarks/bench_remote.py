"""Benchmark `dbt-runner remote` (issue 33) against running the same job directly.

The demo's full job, the image's (DuckDB inside the container, artifacts to moto's
S3), RUNS times each way, alternating:
- local: `docker run` of the image on the project;
- remote: `dbt-runner remote` through the local ECS stand-in (tests/ecs_standin.py:
  the same image, the project packed to S3, the log through moto's CloudWatch Logs),
  with the default poll and drain settings.
Figures (medians): the caller's overhead (remote - local, goal <= 10 s), and the
seconds from the container's exit to the caller's exit, with the log complete and the
reports fetched (goal <= 5 s).

Usage: python benchmarks/bench_remote.py [--image dbt-runner:<VERSION>-all]
Needs the image (make image) and docker. Writes build/bench/remote.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import write_results
from tests.ecs_standin import ecs_standin
from tests.support import DEMO, clean_env, copy_project, moto_server

ROOT = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("DOCKER", "docker")
RUNS = 3


def local(image: str, project: Path, env: dict[str, str]) -> float:
    flags = [f for name, value in env.items() for f in ("-e", f"{name}={value}")]
    started = time.monotonic()
    subprocess.run(
        [
            DOCKER,
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            f"{project}:/opt/dbt-runner/project:ro",
            *flags,
            image,
        ],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def remote(env: dict[str, str], folder: Path) -> tuple[float, float]:
    """The caller's wall time, and when it ended (epoch)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "dbt_runner", "remote"],
        env=env,
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started, time.time()


def main() -> None:
    parser = argparse.ArgumentParser()
    version = (ROOT / "VERSION").read_text().strip()
    parser.add_argument("--image", default=f"dbt-runner:{version}-all")
    image = parser.parse_args().image
    folder = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    project = copy_project(DEMO, folder / "demo")
    with moto_server() as moto, ecs_standin(DOCKER, moto.client("logs"), moto.env) as standin:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        moto.client("s3").create_bucket(Bucket=bucket)
        job = {"DBT_RUNNER_ENV": "prod", "DBT_RUNNER_ARTIFACTS_URL": f"s3://{bucket}/artifacts"}
        options = {
            "awslogs-group": "/ecs/bench",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "dbt",
        }
        container = {"name": "dbt-runner", "image": image, "user": "10001", "command": ["run"]}
        container |= {"environment": [{"name": k, "value": v} for k, v in job.items()]}
        container |= {"logConfiguration": {"logDriver": "awslogs", "options": options}}
        family = standin.register(
            {"family": "bench", "memory": "2048", "containerDefinitions": [container]}
        )
        caller = clean_env(
            **moto.env,
            AWS_ENDPOINT_URL_ECS=standin.url,
            DBT_RUNNER_PROJECT_DIR=str(project),
            DBT_RUNNER_REPORT_DIR=str(folder / "reports"),
            DBT_RUNNER_REMOTE__CLUSTER="bench",
            DBT_RUNNER_REMOTE__TASK_DEFINITION=family,
            DBT_RUNNER_REMOTE__PROJECT_URL=f"s3://{bucket}/projects",
        )
        locals_, remotes, tails = [], [], []
        for _ in range(RUNS):
            locals_.append(local(image, project, moto.env | job))
            seconds, ended = remote(caller, folder)
            task = list(standin.tasks.values())[-1]
            assert task.exit_code == 0 and task.exited_at is not None
            remotes.append(seconds)
            tails.append(ended - task.exited_at)
    write_results(
        "remote",
        {
            "runs": RUNS,
            "local_s": [round(s, 2) for s in locals_],
            "remote_s": [round(s, 2) for s in remotes],
            "overhead_s": round(statistics.median(remotes) - statistics.median(locals_), 2),
            "exit_to_caller_exit_s": [round(s, 2) for s in tails],
            "exit_to_caller_exit_median_s": round(statistics.median(tails), 2),
        },
    )


if __name__ == "__main__":
    main()
