"""Benchmark: the runner's full job against the shell-script way, and `version` start-up.

Both figures are ratios measured in the same run (these machines are noisy):

1. `dbt-runner run` (deps, debug, seed, build, freshness, docs in one process, one
   parse) against the same six dbt commands run one after another as separate
   processes, on a generated N-model DuckDB project. Goal: ratio <= 0.75.
2. `dbt-runner version` against `python -c "import dbt.cli.main"`. Goal: ratio <= 1.3.

Usage: python benchmarks/bench_runner.py [--models 500] [--repeats 1] [--threads 4]
Writes build/bench/runner.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import ROWS, as_in_the_image, generate, profile, write_results

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(extra)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-3000:]}")
    return elapsed


def script_way(project: Path, scratch: Path, threads: int) -> float:
    """The six commands of an dbt_runner.sh, each its own dbt process."""
    profiles = profile(scratch / "profiles", scratch / "script.duckdb", threads)
    common = ["--project-dir", str(project), "--profiles-dir", str(profiles)]
    paths = ["--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")]
    commands = [
        ["deps", *common],
        ["debug", *common],
        ["seed", *common, *paths],
        ["build", "--exclude-resource-type", "seed", *common, *paths],
        ["source", "freshness", *common, *paths],
        ["docs", "generate", "--static", *common, *paths],
    ]
    env = clean_env()
    return sum(timed([str(BIN / "dbt"), *command], env) for command in commands)


def runner_way(project: Path, scratch: Path, threads: int) -> float:
    env = clean_env(
        DBT_RUNNER_PROJECT_DIR=str(project),
        DBT_RUNNER_WORK_DIR=str(scratch / "work"),
        DBT_RUNNER_ARTIFACTS_URL=str(scratch / "out"),
        DBT_RUNNER_WAREHOUSE__PATH=str(scratch / "runner.duckdb"),
        DBT_RUNNER_THREADS=str(threads),
    )
    elapsed = timed([str(BIN / "dbt-runner"), "run"], env)
    report = json.loads((scratch / "out" / "report.json").read_text())
    if report["status"] != "success" or len(report["nodes"]) < 500:
        sys.exit(f"runner job did not do the full work: {report['status']}")
    return elapsed


def median_time(cmd: list[str], repeats: int) -> float:
    env = clean_env()
    timed(cmd, env)  # warm the page cache once, like every later call
    return statistics.median(timed(cmd, env) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=ROWS, help="rows per staging table")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--skip-job", action="store_true", help="only the version figure")
    args = parser.parse_args()
    as_in_the_image()
    results: dict[str, object] = {"models": args.models, "rows": args.rows, "threads": args.threads}

    if not args.skip_job:
        script_times, runner_times = [], []
        for round_ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-") as tmp:
                base = Path(tmp)
                # Separate copies: neither shares dbt_packages or a partial parse with the other.
                script_project = generate(base / "script-project", args.models, rows=args.rows)
                runner_project = generate(base / "runner-project", args.models, rows=args.rows)
                # Alternate who goes first, so drift on the machine hits both.
                if round_ % 2 == 0:
                    script_times.append(script_way(script_project, base / "script", args.threads))
                    runner_times.append(runner_way(runner_project, base / "runner", args.threads))
                else:
                    runner_times.append(runner_way(runner_project, base / "runner", args.threads))
                    script_times.append(script_way(script_project, base / "script", args.threads))
            last = f"script {script_times[-1]:.1f} s, runner {runner_times[-1]:.1f} s"
            print(f"round {round_ + 1}: {last}")
        script, runner = statistics.median(script_times), statistics.median(runner_times)
        results["full_job"] = {
            "script_s": round(script, 2),
            "runner_s": round(runner, 2),
            "ratio": round(runner / script, 3),
            "goal": 0.75,
        }

    version = median_time([str(BIN / "dbt-runner"), "version"], repeats=7)
    import_dbt = median_time([sys.executable, "-c", "import dbt.cli.main"], repeats=7)
    results["version"] = {
        "version_s": round(version, 3),
        "import_dbt_s": round(import_dbt, 3),
        "ratio": round(version / import_dbt, 3),
        "goal": 1.3,
    }

    write_results("runner", results)


if __name__ == "__main__":
    main()
