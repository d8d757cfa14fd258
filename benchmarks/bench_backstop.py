"""Benchmark the check before promoting: every relation the state would name, listed
through the adapter (one listing per schema), at 2,000 and 10,000 models.

On the generated DuckDB project, parsed once in this process as a run parses it, its
relations made directly in the warehouse (one `create table` each: a build of 10,000
models takes most of an hour, and the check only lists them), in one session:

- the check (`engine.relations.missing_relations`): one dbt command on the shared
  manifest, one listing per schema, the comparison;
- the baseline: one `dbt ls` of the same manifest on the same session (what every dbt
  command costs at that size, the graph build included).

Figures: each one's median seconds over three tries, their ratio, and the check's
share of the project's parse. It must find nothing missing, then exactly the relation
dropped before the last try.

Usage: python benchmarks/bench_backstop.py [--models 2000 10000]
Writes build/bench/backstop.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import as_in_the_image, generate, profile, write_results

TRIES = 3


def measure(models: int, base: Path) -> dict[str, Any]:
    import duckdb
    from dbt.cli.main import dbtRunner

    from dbt_runner.engine.invocation import DbtInvocation
    from dbt_runner.engine.relations import expected, missing_relations
    from dbt_runner.engine.session import DbtSession

    project = generate(base / f"p{models}", models=models, rows=10)
    database = base / f"w{models}.duckdb"
    profiles = profile(base / f"profiles{models}", database, threads=1)
    os.chdir(project)
    dbtRunner().invoke(["deps", "--project-dir", str(project), "--profiles-dir", str(profiles)])
    invocation = DbtInvocation(project_dir=project, profiles_dir=profiles)
    session = DbtSession(invocation, base / f"target{models}", "duckdb")
    started = time.perf_counter()
    assert session.parse().status == "success"
    parse_s = time.perf_counter() - started
    places = expected(session.manifest)
    with duckdb.connect(str(database)) as con:
        for (_, schema), names in places.items():
            con.execute(f'create schema if not exists "{schema}"')
            for name in names:
                con.execute(f'create table "{schema}"."{name}" as select 1 as id')
    checks, lists = [], []
    for _ in range(TRIES):
        started = time.perf_counter()
        assert missing_relations(session) == []
        checks.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert session.selected(["build"]) is not None
        lists.append(time.perf_counter() - started)
    (_, schema), name, uid = next(
        (place, name, uid) for place, names in places.items() for name, uid in names.items()
    )
    with duckdb.connect(str(database)) as con:
        con.execute(f'drop table "{schema}"."{name}"')
    assert missing_relations(session) == [uid]
    check, listing = statistics.median(checks), statistics.median(lists)
    relations = sum(len(names) for names in places.values())
    return {
        "models": models,
        "relations": relations,
        "schemas": len(places),
        "parse_s": round(parse_s, 2),
        "check_s": round(check, 3),
        "dbt_ls_s": round(listing, 3),
        "check_vs_dbt_ls": round(check / listing, 3),
        "check_vs_parse": round(check / parse_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[2000, 10000])
    args = parser.parse_args()
    as_in_the_image()
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-backstop-") as folder:
        for models in args.models:
            results.append(measure(models, Path(folder)))
            print(results[-1], flush=True)
    write_results("backstop", {"sizes": results})


if __name__ == "__main__":
    main()
