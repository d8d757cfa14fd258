"""Benchmark fresh jobs against the full job, on a generated N-model DuckDB project with
several sources (each feeding its own part of the DAG), in one session:

1. The full job (the daily build), then a first fresh job (no sources.json yet: it
   builds everything and keeps one).
2. New rows in one source: the fresh job's wall time against the full job's, and the
   models it built against the models in the project.
3. Nothing new anywhere: the fresh job's wall time against the full job's
   (goal <= 0.15 at 500 models).

Usage: python benchmarks/bench_fresh.py [--models 500] [--sources 10] [--rows N]
Writes build/bench/fresh.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import ROWS, as_in_the_image, generate, run_job, runner_env, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--rows", type=int, default=ROWS, help="rows per staging table")
    args = parser.parse_args()
    as_in_the_image()
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-fresh-") as tmp:
        base = Path(tmp)
        project = generate(base / "project", args.models, rows=args.rows, sources=args.sources)
        env = runner_env(base, project)
        full, _ = run_job(env)
        print(f"full job: {full:.1f} s", flush=True)
        run_job(env, "--job", "fresh")  # keeps the first sources.json

        with duckdb.connect(str(base / "warehouse.duckdb")) as con:
            con.execute("insert into main.seed_3 values (9999, 1, 'a', now()::timestamp)")
        one, one_report = run_job(env, "--job", "fresh")
        fresh = one_report["fresh"]
        assert fresh["new_data"] == ["source.bench.raw.seed_3"], fresh
        print(f"fresh, new data in one source: {one:.1f} s", flush=True)

        nothing, nothing_report = run_job(env, "--job", "fresh")
        assert nothing_report["fresh"]["models_built"] == 0, nothing_report["fresh"]
        print(f"fresh, nothing new: {nothing:.1f} s", flush=True)
        results = {
            "models": args.models,
            "sources": args.sources,
            "rows": args.rows,
            "full_s": round(full, 2),
            "one_source_s": round(one, 2),
            "one_source_ratio": round(one / full, 3),
            "models_built": fresh["models_built"],
            "models_in_project": fresh["models_built"] + fresh["models_skipped"],
            "model_seconds_skipped": fresh["model_seconds_skipped"],
            "nothing_new_s": round(nothing, 2),
            "nothing_new_ratio": round(nothing / full, 3),
            "goal_nothing_new": 0.15,
            "timings_nothing_new": nothing_report["timings"],
        }
    write_results("fresh", results)


if __name__ == "__main__":
    main()
