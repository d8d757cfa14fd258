"""Benchmark slim jobs against the full job, on a generated N-model DuckDB project.

In one session: the full job (which promotes state), then a slim job after changing
one leaf model with dbt's parse cache restored from the state (warm), then another
after a second change with the cache removed from the state (cold).
Goals (issue 12): slim (warm) / full <= 0.06 at 500 models, <= 0.08 at 2,000; the
cold ratio is reported too. `--cpus 1` pins every process to one core, the conditions
the issue's reference figures were measured in.

Usage: python benchmarks/bench_slim.py [--models 500] [--threads 4] [--cpus N]
Writes build/bench/slim-<models>[-<cpus>cpu].json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import ROWS, as_in_the_image, generate, run_job, runner_env, write_results


def change(model: Path, marker: str) -> None:
    model.write_text(model.read_text().rstrip("\n") + f" -- {marker}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=ROWS, help="rows per staging table")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cpus", type=int, help="pin the jobs to this many cores")
    args = parser.parse_args()
    as_in_the_image()
    if args.cpus:
        # Inherited by every job this script starts.
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cpus]))
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-slim-") as tmp:
        base = Path(tmp)
        project = generate(base / "project", args.models, rows=args.rows)
        # The last generated model has no children: a leaf.
        leaf = sorted((project / "models" / "layers").glob("m_*.sql"))[-1]
        env = runner_env(base, project)
        env |= {
            "DBT_RUNNER_THREADS": str(args.threads),
        }
        full, full_report = run_job(env)
        print(f"full job: {full:.1f} s", flush=True)

        change(leaf, "warm")
        warm, warm_report = run_job(env, "--job", "slim")
        state = warm_report["state"]
        assert state["mode"] == "slim" and state["warm_parse"], state
        assert [uid for uid in state["built"] if uid.startswith("model.")] == [
            f"model.bench.{leaf.stem}"
        ]
        print(f"slim, warm parse: {warm:.1f} s", flush=True)

        change(leaf, "cold")
        pointer = json.loads(
            (base / "state" / "bench" / "dev" / "state" / "latest.json").read_text()
        )
        cache = (
            base
            / "state"
            / "bench"
            / "dev"
            / "state"
            / "runs"
            / pointer["run_id"]
            / "partial_parse.msgpack"
        )
        cache.unlink()
        cold, cold_report = run_job(env, "--job", "slim")
        assert cold_report["state"]["mode"] == "slim" and not cold_report["state"]["warm_parse"]
        print(f"slim, cold parse: {cold:.1f} s", flush=True)

        def phase_times(report: dict[str, Any]) -> dict[str, float]:
            # dbt's import is the "startup" stage, not the first phase's.
            startup = {"startup": report["timings"].get("startup", 0.0)}
            return startup | {p["name"]: p["duration_s"] for p in report["phases"]}

        results = {
            "models": args.models,
            "rows": args.rows,
            "threads": args.threads,
            "cpus": len(os.sched_getaffinity(0)),
            "full_s": round(full, 2),
            "slim_warm_s": round(warm, 2),
            "slim_cold_s": round(cold, 2),
            "ratio_warm": round(warm / full, 3),
            "ratio_cold": round(cold / full, 3),
            "goal_warm": 0.06 if args.models <= 500 else 0.08,
            "phases": {
                "full": phase_times(full_report),
                "slim_warm": phase_times(warm_report),
                "slim_cold": phase_times(cold_report),
            },
        }
    pinned = f"-{args.cpus}cpu" if args.cpus else ""
    write_results(f"slim-{args.models}{pinned}", results)


if __name__ == "__main__":
    main()
