"""Benchmark a project baked into its image (issue 23): a fresh container's first job.

The generated N-model project in an image FROM the runner, built as
examples/derived/Dockerfile builds one (`RUN dbt-runner prepare`). Each run is a new
container with no state (the first task of a deployment): its full job, with the baked
parse cache, and without it (`DBT_RUNNER_PREPARED_DIR` pointed at an empty folder),
alternating, RUNS times each. Figures, from each run's report: the parse phase (goal:
baked / not baked <= 0.2) and the time from the process's start to the first node.

Usage: python benchmarks/bench_baked.py [--models 2000] [--image dbt-runner:<VERSION>-all]
Needs the image (make image). Writes build/bench/baked-<models>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import generate, write_results

ROOT = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("DOCKER", "docker")
RUNS = 2
# Fixed at build time and at run time alike: the parse depends on the target.
TARGET_ENV = {"DBT_RUNNER_WAREHOUSE__PATH": "/out/warehouse.duckdb"}


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"docker {args[0]} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def build_image(project: Path, runner: str) -> str:
    settings = " ".join(f"{name}={value}" for name, value in TARGET_ENV.items())
    dockerfile = (ROOT / "examples" / "derived" / "Dockerfile").read_text()
    dockerfile = dockerfile.replace(
        'RUN ["dbt-runner", "prepare"]', f'ENV {settings}\nRUN ["dbt-runner", "prepare"]'
    )
    (project / "Dockerfile").write_text(dockerfile)
    (project / ".dockerignore").write_text("Dockerfile\ntarget\ndbt_packages\n")
    tag = f"dbt-runner-bench-baked:{uuid.uuid4().hex[:8]}"
    docker("build", "--network", "host", "--build-arg", f"RUNNER={runner}", "-t", tag, str(project))
    return tag


def first_job(image: str, out: Path, baked: bool) -> dict[str, float]:
    """A new container's full job; the parse phase and the time to the first node."""
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the image's user writes here
    extra = [] if baked else ["-e", "DBT_RUNNER_PREPARED_DIR=/opt/dbt-runner/nothing-baked"]
    docker("run", "--rm", "-v", f"{out}:/out", *extra, image)
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    used = bool((report.get("prepared") or {}).get("parse"))
    if report["status"] != "success" or used != baked:
        sys.exit(f"unexpected run: {report['status']}, {report.get('prepared')}")
    parse = next(phase for phase in report["phases"] if phase["name"] == "parse")
    started = datetime.fromisoformat(report["started_at"])
    first = min(datetime.fromisoformat(n["started_at"]) for n in report["nodes"] if n["started_at"])
    return {
        "parse_s": parse["duration_s"],
        "first_node_s": (first - started).total_seconds(),
        "job_s": report["duration_s"],
    }


def median(runs: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100)
    version = (ROOT / "VERSION").read_text().strip()
    parser.add_argument("--image", default=f"dbt-runner:{version}-all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-baked-") as tmp:
        base = Path(tmp)
        project = generate(base / "project", args.models, rows=args.rows)
        image = build_image(project, args.image)
        try:
            runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
            for attempt in range(RUNS):
                for baked in (attempt % 2 == 0, attempt % 2 != 0):  # alternate who goes first
                    runs[baked].append(first_job(image, base / f"out-{attempt}-{baked}", baked))
                    print(f"baked={baked}: {runs[baked][-1]}", flush=True)
        finally:
            subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True, check=False)
    with_cache, without = runs[True], runs[False]
    results = {
        "models": args.models,
        "image": args.image,
        "parse": {
            "baked_s": median(with_cache, "parse_s"),
            "not_baked_s": median(without, "parse_s"),
            "ratio": round(median(with_cache, "parse_s") / median(without, "parse_s"), 3),
            "goal": 0.2,
        },
        "first_node": {
            "baked_s": median(with_cache, "first_node_s"),
            "not_baked_s": median(without, "first_node_s"),
        },
        "job": {"baked_s": median(with_cache, "job_s"), "not_baked_s": median(without, "job_s")},
    }
    write_results(f"baked-{args.models}", results)


if __name__ == "__main__":
    main()
