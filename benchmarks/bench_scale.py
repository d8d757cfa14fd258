"""Benchmark a project of 10,000 models (issue 23): what grows with the project.

On the generated DuckDB project with small data (so dbt's own per-node overhead
dominates, as in the largest deployments' CI), one session, one machine:

1. plain `dbt parse && dbt build` (two processes, as a shell script runs them) against
   the runner's first job, one process: a fresh job with no state, which parses, takes
   the sources' freshness (5 queries; the seeds they read are loaded beforehand) and
   builds everything, as `dbt build` does; it keeps the sources' state for 4. (a first
   job of its own would be another full build: 45 minutes at 10,000 models). The wall
   time ratio (goal <= 1.0) and the peak RSS of each (the largest process; goal: the
   runner's <= plain dbt's + 5 %);
2. the runner's own work after dbt finished: until the report is final (state,
   publishing, history, reports, run page, notifications, metrics), and until the
   process has exited (the report's last write, and the adapter's own close: DuckDB
   checkpoints its database file, as at the end of plain dbt's process), for the run's
   node count (goal < 2 s for 20,000 nodes);
3. a slim job (one leaf changed, warm parse from the state) against the build of 1.
   (goal <= 0.03);
4. a fresh job with nothing new against the build of 1. (goal <= 0.05).

The runner has dbt use its fast test edges (engine/startup.py); `--plain-fast-edges`
also times plain dbt with them, to tell what dbt's flag alone buys from the runner's own.

Usage: python benchmarks/bench_scale.py [--models 10000] [--rows 100] [--tested-every 1]
                                        [--plain-fast-edges]
Writes build/bench/scale-<models>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import BIN, as_in_the_image, generate, profile, runner_env, write_results


def measured(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float, float]:
    """Run a command to its end: its wall seconds, its peak RSS in MB (the largest of the
    process and the children it waited for) and the epoch second it ended."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    ended = time.time()
    spent = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}")
    return spent, usage.ru_maxrss / 1024, ended


def plain_dbt(project: Path, base: Path, fast_edges: bool = False) -> dict[str, float]:
    """`dbt parse && dbt build`, each its own process, no parse cache; dbt's default
    test edges, or (`fast_edges`) the ones the runner asks for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_USE_FAST_TEST_EDGES"] = str(fast_edges).lower()
    database = base / f"plain-{fast_edges}.duckdb"
    profiles = profile(base / "plain-profile", database, threads=4)
    common = ["--project-dir", str(project), "--profiles-dir", str(profiles)]
    shutil.rmtree(project / "target", ignore_errors=True)  # no parse cache from a last time
    measured([str(BIN / "dbt"), "deps", *common], env, base / "plain-deps.log")
    parse_s, parse_mb, _ = measured([str(BIN / "dbt"), "parse", *common], env, base / "p.log")
    build_s, build_mb, _ = measured([str(BIN / "dbt"), "build", *common], env, base / "b.log")
    return {"parse_s": parse_s, "build_s": build_s, "peak_rss_mb": max(parse_mb, build_mb)}


def runner(env: dict[str, str], base: Path, *args: str) -> tuple[float, float, dict[str, Any]]:
    """A runner job: wall seconds, peak RSS in MB, its report (with `after_dbt_s`)."""
    command = [str(BIN / "dbt-runner"), "run", *args]
    spent, peak_mb, ended = measured(command, env, base / "runner.log")
    report: dict[str, Any] = json.loads(
        (Path(env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json").read_text()
    )
    if report["status"] != "success":
        sys.exit(f"dbt-runner run {' '.join(args)}: {report['status']}, {report['errors']}")
    dbt_ended = max(
        datetime.fromisoformat(phase["started_at"]).timestamp() + phase["duration_s"]
        for phase in report["phases"]
        if phase["started_at"]
    )
    report["after_dbt_s"] = ended - dbt_ended
    report["until_report_s"] = datetime.fromisoformat(report["finished_at"]).timestamp() - dbt_ended
    return spent, peak_mb, report


# The runner's finishing steps (run/finish.py), as its report times them.
FINISHING = ("state", "publish", "history", "lineage", "report", "notify", "metrics")


def finishing(report: dict[str, Any]) -> dict[str, float]:
    """Seconds per finishing step, from the report's timings."""
    return {step: report["timings"][step] for step in FINISHING if step in report["timings"]}


def leaf(project: Path) -> Path:
    return sorted((project / "models" / "layers").glob("m_*.sql"))[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--tested-every", type=int, default=1, help="a test per Nth model")
    parser.add_argument(
        "--plain-fast-edges",
        action="store_true",
        help="also plain dbt with DBT_USE_FAST_TEST_EDGES=true: what the flag alone buys",
    )
    args = parser.parse_args()
    as_in_the_image()
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-scale-") as tmp:
        base = Path(tmp)
        shape = {"rows": args.rows, "tested_every": args.tested_every}
        plain_project = generate(base / "plain", args.models, **shape)
        plain = plain_dbt(plain_project, base)
        print(
            f"plain dbt: parse {plain['parse_s']:.1f} s, build {plain['build_s']:.1f} s, "
            f"peak RSS {plain['peak_rss_mb']:.0f} MB"
        )
        fast = plain_dbt(plain_project, base, fast_edges=True) if args.plain_fast_edges else None

        project = generate(base / "runner", args.models, **shape)
        env = runner_env(base, project) | {"DBT_RUNNER_THREADS": "4"}
        deps = [str(BIN / "dbt"), "deps", "--project-dir", str(project)]
        subprocess.run(deps, env=env, capture_output=True, check=True)
        # The sources are seeds: loaded once beforehand, so that the first fresh job can
        # take their freshness (its build loads them again, as plain dbt's does).
        seed = [str(BIN / "dbt-runner"), "dbt", "--", "seed"]
        subprocess.run(seed, env=env, capture_output=True, check=True)
        build_s, build_mb, build = runner(env, base, "--job", "fresh")
        assert build["state"]["promoted"], build["state"]
        assert build["fresh"]["models_built"] == args.models, build["fresh"]  # everything
        print(
            f"runner parse + build: {build_s:.1f} s, peak RSS {build_mb:.0f} MB, "
            f"after dbt {build['until_report_s']:.2f} s until the report, "
            f"{build['after_dbt_s']:.2f} s until exit"
        )
        print(f"  its finishing steps: {finishing(build)}")

        (leaf(project)).write_text(leaf(project).read_text() + "-- one change\n")
        slim_s, _, slim = runner(env, base, "--job", "slim")
        assert slim["state"]["mode"] == "slim" and slim["state"]["warm_parse"], slim["state"]
        print(f"slim: {slim_s:.1f} s")

        fresh_s, _, fresh = runner(env, base, "--job", "fresh")
        assert fresh["fresh"]["models_built"] == 0, fresh["fresh"]
        print(f"fresh, nothing new: {fresh_s:.1f} s")

        plain_s = plain["parse_s"] + plain["build_s"]
        results = {
            "models": args.models,
            "nodes": len(build["nodes"]),
            "rows": args.rows,
            "cpus": len(os.sched_getaffinity(0)),
            "parse_build": {
                "plain_dbt_s": round(plain_s, 2),
                "runner_s": round(build_s, 2),
                "ratio": round(build_s / plain_s, 3),
                "goal": 1.0,
            },
            "peak_rss": {
                "plain_dbt_mb": round(plain["peak_rss_mb"]),
                "runner_mb": round(build_mb),
                "ratio": round(build_mb / plain["peak_rss_mb"], 3),
                "goal": 1.05,
            },
            "after_dbt": {
                "until_exit_s": round(build["after_dbt_s"], 2),
                "until_report_s": round(build["until_report_s"], 2),
                "goal_s": 2.0,
                "steps_s": finishing(build),
            },
            "slim": {
                "seconds": round(slim_s, 2),
                "ratio": round(slim_s / build_s, 4),
                "goal": 0.03,
            },
            "fresh_nothing_new": {
                "seconds": round(fresh_s, 2),
                "ratio": round(fresh_s / build_s, 4),
                "goal": 0.05,
            },
        }
    if fast is not None:
        fast_s = fast["parse_s"] + fast["build_s"]
        results["parse_build"]["plain_dbt_fast_edges_s"] = round(fast_s, 2)
        results["parse_build"]["ratio_to_fast_edges"] = round(build_s / fast_s, 3)
    write_results(f"scale-{args.models}", results)


if __name__ == "__main__":
    main()
