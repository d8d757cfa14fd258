"""Benchmark a slim job's children (DBT_RUNNER_SLIM__CHILDREN=affected) against
state:modified+ (all), on a generated N-model DuckDB project.

In one session, on the mid-DAG model with the most descendants: a new column, once
with every descendant built and once with those a change reaches (a second new
column, the same change); then a changed filter, the same two ways. Each job's nodes
built and wall time; the children step's seconds (dbt's listing and compile, the
warehouse's columns) and of them the analysis's; after the last job, every table
against a full rebuild of the same code in a warehouse of its own.
Goals (issue 32): the new column builds at most 0.05 of the nodes state:modified+
builds; the filter builds exactly what it builds, at most 5 % slower; deciding takes at
most 1 s at 2,000 models; no table differs from the full rebuild.

Usage: python benchmarks/bench_children.py [--models 500] [--rows 100000] [--threads 4]
Writes build/bench/children-<models>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import as_in_the_image, generate, run_job, runner_env, write_results


def descendants(manifest: dict[str, Any], unique_id: str) -> set[str]:
    children, found, pending = manifest["child_map"], set(), [unique_id]
    while pending:
        for child in children.get(pending.pop(), []):
            if child.startswith("model.") and child not in found:
                found.add(child)
                pending.append(child)
    return found


def mid_dag_model(base: Path, report: dict[str, Any]) -> tuple[Path, int]:
    """The model with the most descendants among the middle half of the DAG's models."""
    run = base / "out" / "bench" / "dev" / "runs" / report["run_id"] / "manifest.json"
    manifest = json.loads(run.read_text())
    models = sorted(u for u in manifest["nodes"] if u.startswith("model.bench.m_"))
    middle = models[len(models) // 4 : len(models) // 2]
    best = max(middle, key=lambda uid: len(descendants(manifest, uid)))
    path = base / "project" / manifest["nodes"][best]["original_file_path"]
    return path, len(descendants(manifest, best))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def measured(env: dict[str, str], children: str) -> dict[str, Any]:
    wall, report = run_job(env | {"DBT_RUNNER_SLIM__CHILDREN": children}, "--job", "slim")
    state = report["state"]
    built = [uid for uid in state["built"] if uid.startswith("model.")]
    reach = state.get("reach") or {}
    return {
        "wall_s": round(wall, 2),
        "models_built": len(built),
        "decide_s": reach.get("seconds"),
        "analysis_s": reach.get("analysis_s"),
        "promoted": state["promoted"],
    }


def tables(path: Path) -> dict[str, tuple[int, int]]:
    """Each table's row count and an order-free digest of its rows."""
    found: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(path), read_only=True) as db:
        listed = db.execute("select table_name from information_schema.tables").fetchall()
        for (name,) in listed:
            row = db.execute(f'select count(*), bit_xor(hash(t)) from "{name}" t').fetchone()
            found[name] = (row[0], row[1]) if row else (0, 0)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per staging table")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    as_in_the_image()
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-children-") as tmp:
        base = Path(tmp)
        project = generate(base / "project", args.models, rows=args.rows)
        env = runner_env(base, project) | {"DBT_RUNNER_THREADS": str(args.threads)}
        full, report = run_job(env)
        model, below = mid_dag_model(base, report)
        print(f"full job: {full:.1f} s; {model.stem} has {below} descendants", flush=True)
        results: dict[str, Any] = {"models": args.models, "rows": args.rows, "full_s": full}
        results |= {"model": model.stem, "descendants": below}

        edit(model, " as value", " as value, 1 as extra_all")
        all_column = measured(env, "all")
        edit(model, " as value", " as value, 2 as extra_affected")
        affected_column = measured(env, "affected")
        results["new_column"] = {"all": all_column, "affected": affected_column}
        print(json.dumps(results["new_column"]), flush=True)

        key = "a.id" if " as a\n" in model.read_text() else "id"  # a join's, or its own
        model.write_text(model.read_text().rstrip("\n") + f"\nwhere {key} >= 0\n")
        all_filter = measured(env, "all")
        edit(model, f"where {key} >= 0", f"where {key} >= 1")
        affected_filter = measured(env, "affected")
        results["filter"] = {"all": all_filter, "affected": affected_filter}
        print(json.dumps(results["filter"]), flush=True)

        oracle = env | {
            "DBT_RUNNER_WAREHOUSE__PATH": str(base / "oracle.duckdb"),
            "DBT_RUNNER_ENV": "oracle",
        }
        oracle.pop("DBT_RUNNER_STATE_URL")
        run_job(oracle)
        job, rebuilt = tables(base / "warehouse.duckdb"), tables(base / "oracle.duckdb")
        results["tables_differing"] = sorted(n for n in rebuilt if job.get(n) != rebuilt[n])
        results["ratios"] = {
            "new_column_nodes": round(
                affected_column["models_built"] / all_column["models_built"], 3
            ),
            "filter_nodes_same": affected_filter["models_built"] == all_filter["models_built"],
            "filter_wall": round(affected_filter["wall_s"] / all_filter["wall_s"], 3),
        }
    write_results(f"children-{args.models}", results)


if __name__ == "__main__":
    main()
