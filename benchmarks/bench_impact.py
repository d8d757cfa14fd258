"""Benchmark a pull request's impact step against its build phase, on PostgreSQL.

The generated N-model project (every model keyed by `meta.primary_key`), built in
production; then a pull request changing the model whose edit reaches a tenth of the
project (it filters out a few rows
and changes a value in others): its slim run builds that model and everything
downstream in the pull request's schemas, then compares each built model with
production. Figures from the run's own report, the same run: the impact phase's time
over the build phase's (goal, issue 22: <= 0.25), the models compared and the
warehouse queries the impact issued.

Usage: python benchmarks/bench_impact.py [--models 500] [--rows 10000]
Writes build/bench/impact-<models>.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import as_in_the_image, generate, run_job, runner_env, write_results
from tests.support import Postgres, postgres_server


def keyed(project: Path) -> None:
    """Every model keyed by its id, as a team would declare it; the sources in one
    schema for every env (`raw_schema`), as a warehouse's raw data is: a pull request
    reads production's sources, so only its edit and what is downstream differ."""
    sources = project / "models" / "staging" / "_sources.yml"
    sources.write_text(
        sources.read_text().replace(
            "'{{ target.schema }}'", "'{{ var(\"raw_schema\", target.schema) }}'"
        )
    )
    path = project / "dbt_project.yml"
    config = yaml.safe_load(path.read_text())
    config["models"]["bench"]["+meta"] = {"primary_key": "id"}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def mid_dag_model(project: Path, share: float = 0.1) -> Path:
    """The model whose edit reaches closest to `share` of the project (itself and every
    model downstream): a pull request with a real review in it."""
    models = {path.stem: path for path in (project / "models" / "layers").glob("m_*.sql")}
    children: dict[str, set[str]] = {name: set() for name in models}
    for name, path in models.items():
        for parent in re.findall(r"ref\('(m_\d+)'\)", path.read_text()):
            children[parent].add(name)

    def reach(name: str) -> int:
        seen, todo = {name}, [name]
        while todo:
            for child in children[todo.pop()] - seen:
                seen.add(child)
                todo.append(child)
        return len(seen)

    wanted = share * len(models)
    return models[min(sorted(models), key=lambda name: abs(reach(name) - wanted))]


def edit(model: Path) -> None:
    """Drop 1 row in 50 and change the value of 1 in 10 of the rest."""
    sql = model.read_text().rstrip("\n")
    model.write_text(
        f"select id, case when id % 10 = 0 then value + 1 else value end as value, category\n"
        f"from ({sql}) as changed\nwhere id % 50 <> 0\n"
    )


def environment(base: Path, project: Path, postgres: Postgres, schema: str) -> dict[str, str]:
    env = runner_env(base, project) | postgres.warehouse_env(schema)
    return env | {"DBT_RUNNER_THREADS": "4", "DBT_RUNNER_PR_IMPACT__MAX_MODELS": "1000"}


def phase(report: dict[str, Any], name: str) -> float:
    return float(next(p["duration_s"] for p in report["phases"] if p["name"] == name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per staging table")
    args = parser.parse_args()
    as_in_the_image()
    with (
        tempfile.TemporaryDirectory(prefix="dbt-runner-bench-impact-") as tmp,
        postgres_server() as postgres,
    ):
        base = Path(tmp)
        project = generate(base / "project", args.models, rows=args.rows, dialect="postgres")
        keyed(project)
        raw = {"DBT_RUNNER_VARS": json.dumps({"raw_schema": "prod"})}  # the same in every env
        prod = environment(base, project, postgres, "prod") | {"DBT_RUNNER_ENV": "prod"} | raw
        full, _ = run_job(prod, "--phases", "deps,seed,build")
        print(f"production, full build: {full:.1f} s", flush=True)

        model = mid_dag_model(project)
        edit(model)
        ci = environment(base, project, postgres, "ci") | {"DBT_RUNNER_ENV": "ci"} | raw
        wall, report = run_job(ci, "--pr", "1", "--phases", "deps,build")
        impact = report["impact"]
        compared = [m for m in impact["models"] if m["status"] == "compared"]
        assert compared and all(m["by_key"] is not None for m in compared), impact
        edited = next(m for m in compared if m["name"] == model.stem)
        assert edited["rows_difference"] < 0 and edited["by_key"]["changed"] > 0, edited
        build, step = phase(report, "build"), phase(report, "impact")
        results = {
            "models": args.models,
            "rows": args.rows,
            "changed_model": model.stem,
            "models_built": len(report["impact"]["models"]),
            "models_compared": len(compared),
            "models_with_differences": sum(
                1 for m in compared if m["by_key"]["changed"] or m["rows_difference"]
            ),
            "pr_run_s": round(wall, 2),
            "build_phase_s": build,
            "impact_s": step,
            "ratio": round(step / build, 3),
            "goal": 0.25,
            "queries": impact["queries"],
            "queries_per_model": round(impact["queries"] / len(compared), 1),
        }
    write_results(f"impact-{args.models}", results)


if __name__ == "__main__":
    main()
