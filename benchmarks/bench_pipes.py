"""Benchmark Dagster Pipes (issue 34): the runner's own time with Pipes on against off,
and the delay from a node finishing to its event in Dagster's event log.

The generated N-model DuckDB project's seed and build, RUNS times each way, alternating:
- off: `dbt-runner run`, no Dagster;
- on: a real Dagster (make dagster-venv) materializing the example assets
  (docker/deploy/dagster/assets.py) through PipesSubprocessClient.
- on, no Dagster: the runner with Pipes' variables pointing at files (its messages
  written, nobody reading them): the runner's own cost, without Dagster's process
  competing for the same cores.
Figures: the runner's duration in its report, on / off, both ways (goal: at most
1.02), as the ratio of their medians, and for every materialization, Dagster's event
timestamp less the node's `finished_at` in the report (goal: under 1 s), median and
largest. Each round alternates which way runs first: the first run of a bench is the
fastest here (0.87 of the median at 2,000 models), and a fixed order would favour one
way.

Usage: python benchmarks/bench_pipes.py [--models 2000] [--runs 2] [--no-dagster]
(--no-dagster: the runner's own cost only, off and on without Dagster).
Writes build/bench/pipes-<models>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import BIN, as_in_the_image, generate, run_job, runner_env, write_results

ROOT = Path(__file__).resolve().parents[1]
DAGSTER_PYTHON = ROOT / ".venv-dagster" / "bin" / "python"
JOB = ("--job", "custom", "--phases", "seed,build")


def with_pipes(env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Dagster's event log (tests/dagster_job.py) and the run's report."""
    result = subprocess.run(
        [str(DAGSTER_PYTHON), str(ROOT / "tests" / "dagster_job.py"), "process"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if not found["success"]:
        sys.exit(f"Dagster's run failed: {found['failures']}\n{result.stderr[-3000:]}")
    report = json.loads((Path(env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json").read_text())
    return found, report


def without_dagster(env: dict[str, str], folder: Path) -> dict[str, Any]:
    """The runner with Pipes on and its messages going to a file nobody reads."""
    from dagster_pipes import encode_param

    context: dict[str, Any] = {"asset_keys": None, "code_version_by_asset_key": None}
    context |= {"provenance_by_asset_key": None, "partition_key": None}
    context |= {"partition_key_range": None, "partition_time_window": None, "run_id": "bench"}
    context |= {"job_name": None, "retry_number": 0, "extras": {}}
    (folder / "context.json").write_text(json.dumps(context))
    bootstrap = {
        "DAGSTER_PIPES_CONTEXT": encode_param({"path": str(folder / "context.json")}),
        "DAGSTER_PIPES_MESSAGES": encode_param({"path": str(folder / "messages.jsonl")}),
    }
    return run_job(env | bootstrap, *JOB)[1]


def delays(found: dict[str, Any], report: dict[str, Any]) -> list[float]:
    finished = {
        n["unique_id"]: datetime.fromisoformat(n["finished_at"]).timestamp()
        for n in report["nodes"]
        if n.get("finished_at")
    }
    return [
        m["at"] - finished[m["metadata"]["unique_id"]]
        for m in found["materializations"]
        if m["metadata"]["unique_id"] in finished
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-dagster", action="store_true", help="the runner's own cost only")
    args = parser.parse_args()
    as_in_the_image()
    base = Path(tempfile.mkdtemp(prefix="bench-pipes-"))
    project = generate(base / "project", models=args.models)
    env = runner_env(base, project) | {
        "DBT_RUNNER_JOB": "custom",
        "DBT_RUNNER_PHASES": "seed,build",
    }
    for command in ("deps", "parse"):
        subprocess.run(
            [str(BIN / "dbt-runner"), "dbt", "--", command],
            env=env,
            check=True,
            capture_output=True,
        )
    piped = env | {
        "DAGSTER_DBT_MANIFEST": str(project / "target" / "manifest.json"),
        "DAGSTER_DBT_RUNNER_COMMAND": str(BIN / "dbt-runner"),
    }
    off, on, alone, waits = [], [], [], []
    for round_ in range(args.runs):
        if round_ % 2:
            alone.append(without_dagster(env, base)["duration_s"])
        off.append(run_job(env, *JOB)[1]["duration_s"])
        if not round_ % 2:
            alone.append(without_dagster(env, base)["duration_s"])
        if not args.no_dagster:
            found, report = with_pipes(piped)
            on.append(report["duration_s"])
            waits += delays(found, report)
    results: dict[str, Any] = {"models": args.models, "runs": args.runs, "off_s": off}
    results |= {"on_no_dagster_s": alone, **ratios("on_no_dagster", alone, off)}
    if on:
        results |= {"on_s": on, **ratios("on", on, off), "events": len(waits)}
        results["event_delay_median_s"] = round(statistics.median(waits), 3)
        results["event_delay_max_s"] = round(max(waits), 3)
    write_results(f"pipes-{args.models}", results)


def ratios(name: str, runs: list[float], off: list[float]) -> dict[str, float]:
    """`runs` against `off`: the ratio of their medians."""
    return {f"{name}_over_off": round(statistics.median(runs) / statistics.median(off), 3)}


if __name__ == "__main__":
    main()
