"""A generated dbt project for benchmarks: N models in layers on DuckDB.

Seeds loaded as sources (each with a `loaded_at` column and a freshness rule), a
staging model per source, then a DAG of table models each reading one or two earlier
ones of the same source's part of the DAG, a not_null test on every tenth model, and a
local package: every phase of the full job has real work to do, and new data in one
source touches one part of the DAG.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SEEDS = 5
# Rows per staging table. Calibrated so a full `dbt build` of 500 models takes about as
# long as the reference project the issues quote (49 s on 2 cores): every model then
# does some real work, as in a warehouse, instead of being all dbt overhead.
ROWS = 1_000_000


# The rows of a staging table, per warehouse.
ROW_SOURCE = {
    "duckdb": "range({rows}) as t(r)",
    "postgres": "generate_series(0, {rows} - 1) as t(r)",
}


def generate(
    dest: Path,
    models: int = 500,
    seed: int = 42,
    rows: int = ROWS,
    sources: int = SEEDS,
    dialect: str = "duckdb",
    tested_every: int = 10,
) -> Path:
    """Write the project into `dest` (replaced) and return it; `dialect`: the warehouse
    its staging SQL is written for; a not_null test on every `tested_every`th model."""
    rng = random.Random(seed)
    shutil.rmtree(dest, ignore_errors=True)
    for folder in ("seeds", "models/staging", "models/layers", "local_packages/bench_utils/macros"):
        (dest / folder).mkdir(parents=True)
    (dest / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "version": "1.0.0",
                "profile": "bench",
                "config-version": 2,
                "models": {"bench": {"+materialized": "table"}},
                "seeds": {"bench": {"+column_types": {"loaded_at": "timestamp"}}},
            },
            sort_keys=False,
        )
    )
    (dest / "packages.yml").write_text("packages:\n  - local: local_packages/bench_utils\n")
    (dest / "local_packages/bench_utils/dbt_project.yml").write_text(
        "name: bench_utils\nversion: '1.0.0'\nconfig-version: 2\n"
    )
    (dest / "local_packages/bench_utils/macros/scaled.sql").write_text(
        "{% macro scaled(column, k) %}({{ column }} * {{ k }} % 1000){% endmacro %}\n"
    )

    for i in range(sources):
        lines = ["id,value,category,loaded_at"]
        lines += [
            f"{row},{rng.randint(0, 999)},{rng.choice('abcde')},2026-11-01 00:00:00"
            for row in range(200)
        ]
        (dest / "seeds" / f"seed_{i}.csv").write_text("\n".join(lines) + "\n")
    freshness = {
        "loaded_at_field": "loaded_at",
        "freshness": {"warn_after": {"count": 36500, "period": "day"}},
    }
    tables = [{"name": f"seed_{i}", "config": freshness} for i in range(sources)]
    (dest / "models/staging/_sources.yml").write_text(
        yaml.safe_dump(
            {"sources": [{"name": "raw", "schema": "{{ target.schema }}", "tables": tables}]}
        )
    )

    groups: list[list[str]] = []
    for i in range(sources):
        # Staging tables carry the data volume (generated in the warehouse: seeds go
        # through Python's CSV reader and stay small); they still read their source.
        name = f"stg_{i}"
        (dest / "models/staging" / f"{name}.sql").write_text(
            f"-- depends_on: {{{{ source('raw', 'seed_{i}') }}}}\n"
            f"select r as id, (r * 7919 + {i}) % 1000 as value,\n"
            f"  chr(cast(97 + r % 5 as integer)) as category\n"
            f"from {ROW_SOURCE[dialect].format(rows=rows)}\n"
        )
        groups.append([name])
    tested = []
    for i in range(models - sources):
        name = f"m_{i:04d}"
        names = groups[i % sources]  # one source's part of the DAG
        parents = rng.sample(names[-60:], k=min(len(names), rng.choice((1, 2))))
        k = i + 2
        if len(parents) == 1:
            sql = (
                f"select id, {{{{ bench_utils.scaled('value', {k}) }}}} as value, category\n"
                f"from {{{{ ref('{parents[0]}') }}}}\n"
            )
        else:
            sql = (
                f"select a.id, {{{{ bench_utils.scaled('a.value + b.value', {k}) }}}} as value,"
                f" a.category\nfrom {{{{ ref('{parents[0]}') }}}} as a\n"
                f"join {{{{ ref('{parents[1]}') }}}} as b on a.id = b.id\n"
            )
        (dest / "models/layers" / f"{name}.sql").write_text(sql)
        names.append(name)
        if i % tested_every == 0:
            tested.append(name)
    (dest / "models/layers/_tests.yml").write_text(
        yaml.safe_dump(
            {
                "models": [
                    {"name": name, "columns": [{"name": "id", "data_tests": ["not_null"]}]}
                    for name in tested
                ]
            }
        )
    )
    return dest


def profile(dest: Path, database: Path, threads: int) -> Path:
    """A profiles.yml for the shell-script baseline (the runner renders its own)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "profiles.yml").write_text(
        yaml.safe_dump(
            {
                "bench": {
                    "target": "dev",
                    "outputs": {
                        "dev": {"type": "duckdb", "path": str(database), "threads": threads}
                    },
                }
            }
        )
    )
    return dest


BIN = Path(sys.executable).parent


def as_in_the_image() -> None:
    """Python's bytecode compiled ahead, as the image ships it (`uv --compile-bytecode`),
    and kept: a shell with PYTHONDONTWRITEBYTECODE=1 would otherwise make every process
    compile every module it imports (about 1.5 s per dbt process), runner and plain dbt
    alike, and the ratios would measure the compiler."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    source = Path(__file__).resolve().parents[1] / "entrypoint"
    for folder in (site, source):
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(folder)],
            capture_output=True,
            check=False,  # a file that does not compile is compiled at import, or never used
        )


def runner_env(base: Path, project: Path) -> dict[str, str]:
    """A runner job on the generated project, its folders under `base`; none of the
    caller's own DBT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    return env | {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_RUNNER_PROJECT_DIR": str(project),
        "DBT_RUNNER_WORK_DIR": str(base / "work"),
        "DBT_RUNNER_ARTIFACTS_URL": str(base / "out"),
        "DBT_RUNNER_STATE_URL": str(base / "state"),
        "DBT_RUNNER_WAREHOUSE__PATH": str(base / "warehouse.duckdb"),
    }


def run_job(env: dict[str, str], *args: str) -> tuple[float, dict[str, Any]]:
    """`dbt-runner run ARGS`: its wall time and its report; a failed job ends the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "dbt-runner"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"dbt-runner run {' '.join(args)} failed:\n{result.stdout[-3000:]}")
    report: dict[str, Any] = json.loads(
        (Path(env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json").read_text()
    )
    return elapsed, report


def write_results(name: str, results: dict[str, Any]) -> None:
    """Print a benchmark's figures and keep them in build/bench/NAME.json."""
    out = Path(__file__).resolve().parents[1] / "build" / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
