"""Benchmark the runner's own seconds: a slim job against plain dbt's best slim run.

On the generated N-model DuckDB project with small data (so dbt's own overhead and the
runner's dominate), pinned to one core, in one session: the runner's full job (it
promotes the state) and plain `dbt build` (its manifest kept as the state); then, three
times each, the same one-leaf change and a slim run of both:

- the runner: `dbt-runner run --job slim` (its parse cache restored from the state);
- plain dbt at its best: `dbt build -s state:modified+ --defer --state <state>`, its
  parse cache kept in the project's target folder from the run before.

Figures: the median wall time of each and their ratio (goal, issue 23: <= 0.80), and
how far the report's `duration_s` is from the process's wall time (goal: within 3 %).

Usage: python benchmarks/bench_own.py [--models 500] [--rows 1000] [--cpus 1]
Writes build/bench/own-<models>.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import (
    BIN,
    as_in_the_image,
    generate,
    profile,
    run_job,
    runner_env,
    write_results,
)

RUNS = 3


def change(model: Path, marker: str) -> None:
    model.write_text(model.read_text().rstrip("\n") + f" -- {marker}\n")


def plain_dbt(project: Path, *args: str) -> float:
    """A plain dbt command in the project folder: its wall time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    command = [str(BIN / "dbt"), *args, "--project-dir", str(project), "--profiles-dir"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, str(project / "profile")], env=env, capture_output=True, text=True, check=False
    )
    spent = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{result.stdout[-3000:]}")
    return spent


def leaf(project: Path) -> Path:
    return sorted((project / "models" / "layers").glob("m_*.sql"))[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cpus", type=int, default=1)
    args = parser.parse_args()
    as_in_the_image()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cpus]))
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-own-") as tmp:
        base = Path(tmp)
        runner_project = generate(base / "runner", args.models, rows=args.rows)
        plain_project = generate(base / "plain", args.models, rows=args.rows)
        profile(plain_project / "profile", base / "plain.duckdb", threads=4)
        env = runner_env(base, runner_project) | {"DBT_RUNNER_THREADS": "4"}
        run_job(env)
        plain_dbt(plain_project, "deps")
        plain_dbt(plain_project, "build")
        state = base / "plain-state"
        state.mkdir()
        shutil.copy(plain_project / "target" / "manifest.json", state / "manifest.json")

        runner_s, plain_s, drift = [], [], []
        for attempt in range(RUNS):
            change(leaf(plain_project), f"change {attempt}")
            plain_s.append(
                plain_dbt(
                    plain_project,
                    "build",
                    "-s",
                    "state:modified+",
                    "--defer",
                    "--state",
                    str(state),
                )
            )
            change(leaf(runner_project), f"change {attempt}")
            wall, report = run_job(env, "--job", "slim")
            assert report["state"]["mode"] == "slim" and report["state"]["warm_parse"], report
            runner_s.append(wall)
            drift.append(abs(wall - report["duration_s"]) / wall)
        runner, plain = statistics.median(runner_s), statistics.median(plain_s)
        results = {
            "models": args.models,
            "rows": args.rows,
            "cpus": len(os.sched_getaffinity(0)),
            "runner_slim_s": [round(s, 2) for s in runner_s],
            "plain_dbt_slim_s": [round(s, 2) for s in plain_s],
            "ratio": round(runner / plain, 3),
            "goal": 0.80,
            "duration_vs_wall_max": round(max(drift), 4),
            "duration_goal": 0.03,
        }
    write_results(f"own-{args.models}", results)


if __name__ == "__main__":
    main()
