"""Benchmark a slim job's children (DBT_RUNNER_SLIM__CHILDREN=affected) against
state:modified+ (all), on a generated N-model DuckDB project.

In one session, on the mid-DAG model with the most descendants: a new column before
each slim job, alternately with every descendant built (all) and with those a change
reaches (affected), `--repeat` times each way; then a changed filter, the same. Each
way's models built, median wall time and build phase; the children step's seconds (dbt's listing
and compile, the warehouse's columns) and of them the analysis's; after the last job,
every table against a full rebuild of the same code in a warehouse of its own.
Goals (issue 32): the new column builds at most 0.05 of the nodes state:modified+
builds; the filter builds exactly what it builds, at most 5 % slower; deciding takes at
most 1 s at 2,000 models; no table differs from the full rebuild.

Usage: python benchmarks/bench_children.py [--models 500] [--rows 100000] [--threads 4]
       [--repeat 3]
Writes build/bench/children-<models>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Iterable, Iterator
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
    assert state["promoted"], report["run_id"]
    reach = state.get("reach") or {}
    phases = {phase["name"]: phase.get("duration_s") for phase in report["phases"]}
    return {
        "wall_s": wall,
        "built": sorted(uid for uid in state["built"] if uid.startswith("model.")),
        "decide_s": reach.get("seconds"),
        "analysis_s": reach.get("analysis_s"),
        "build_s": phases.get("build"),
    }


def new_columns(model: Path) -> Iterator[None]:
    """One new column in `model` before each job."""
    for i in range(1_000):
        edit(model, " as value", f" as value, {i} as extra_{i}")
        yield None


def filters(model: Path) -> Iterator[None]:
    """Another filter on `model` before each job."""
    key = "a.id" if " as a\n" in model.read_text() else "id"  # a join's, or its own
    model.write_text(model.read_text().rstrip("\n") + f"\nwhere {key} >= -1\n")
    for i in range(1_000):
        edit(model, f"where {key} >= {i - 1}", f"where {key} >= {i}")
        yield None


def compared(env: dict[str, str], changes: Iterator[None], repeat: int) -> dict[str, Any]:
    """`repeat` slim jobs each way, alternating, a change before each: the median wall
    time, the models built (the same each time) and the children step's seconds."""
    runs: dict[str, list[dict[str, Any]]] = {"all": [], "affected": []}
    for _ in range(repeat):
        for children, done in runs.items():
            next(changes)
            done.append(measured(env, children))
    summary: dict[str, Any] = {}
    for children, done in runs.items():
        assert all(run["built"] == done[0]["built"] for run in done), children
        summary[children] = {
            "wall_s": round(statistics.median(run["wall_s"] for run in done), 2),
            "walls": [round(run["wall_s"], 2) for run in done],
            "models_built": len(done[0]["built"]),
            "built": done[0]["built"],
            "build_s": _median(run["build_s"] for run in done),
            "builds": [run["build_s"] for run in done],
            "decide_s": _median(run["decide_s"] for run in done),
            "analysis_s": _median(run["analysis_s"] for run in done),
        }
    return summary


def _median(values: Iterable[float | None]) -> float | None:
    given = [v for v in values if v is not None]
    return round(statistics.median(given), 3) if given else None


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
    parser.add_argument("--repeat", type=int, default=3, help="slim jobs each way, alternating")
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

        for name, changes in (("new_column", new_columns(model)), ("filter", filters(model))):
            results[name] = compared(env, changes, args.repeat)
            print(json.dumps({name: results[name]}), flush=True)

        oracle = env | {
            "DBT_RUNNER_WAREHOUSE__PATH": str(base / "oracle.duckdb"),
            "DBT_RUNNER_ENV": "oracle",
        }
        oracle.pop("DBT_RUNNER_STATE_URL")
        run_job(oracle)
        job, rebuilt = tables(base / "warehouse.duckdb"), tables(base / "oracle.duckdb")
        results["tables_differing"] = sorted(n for n in rebuilt if job.get(n) != rebuilt[n])
        column, filtered = results["new_column"], results["filter"]
        results["ratios"] = {
            "new_column_nodes": round(
                column["affected"]["models_built"] / column["all"]["models_built"], 3
            ),
            "new_column_wall": round(column["affected"]["wall_s"] / column["all"]["wall_s"], 3),
            "filter_nodes_same": filtered["affected"]["built"] == filtered["all"]["built"],
            "filter_wall": round(filtered["affected"]["wall_s"] / filtered["all"]["wall_s"], 3),
        }
    write_results(f"children-{args.models}", results)


if __name__ == "__main__":
    main()
