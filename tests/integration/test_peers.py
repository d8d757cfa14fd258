"""The same answers as the field's own tools, run in the test on the same project:
SQLFluff's own CLI with its dbt templater (the lint phase), and openlineage-dbt's
`dbt-ol` sending to the same receiver (lineage). Each peer is installed in the test
environment at the version the runner locks; nothing here is a copy of its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from tests.integration.test_failures import add_failures
from tests.support import lineage_receiver, read_json, run_cli

BIN = Path(sys.executable).parent


def add_a_macro_and_sloppy_sql(project: Path) -> None:
    """A project macro a model calls (the jinja templater cannot render it: dbt's can),
    SQL with lint findings, and a file the project's .sqlfluffignore leaves out."""
    (project / "macros").mkdir(exist_ok=True)
    (project / "macros" / "is_late.sql").write_text(
        "{% macro is_late(column) %}({{ column }} > current_date - interval 30 day){% endmacro %}\n"
    )
    marts = project / "models" / "marts"
    (marts / "late_orders.sql").write_text(
        "select order_id,  {{ is_late('order_date') }} as late\nfrom {{ ref('stg_orders') }}\n"
    )
    (marts / "SLOPPY.sql").write_text(
        "SELECT order_id,ORDER_DATE ,  customer_id\nFROM {{ ref('stg_orders') }}   \n"
    )
    (marts / "ignored.sql").write_text("SELECT   1 AS X\n")
    (project / ".sqlfluffignore").write_text("models/marts/ignored.sql\n")


def peer_profiles(folder: Path, database: str) -> Path:
    """A profiles.yml for the peers: the same DuckDB database as the runner's."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = {"demo": {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": database}}}}
    (folder / "profiles.yml").write_text(yaml.safe_dump(profile))
    return folder


def peer(env: dict[str, str], cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# --- lint: SQLFluff's CLI with the dbt templater --------------------------------------


@pytest.mark.parametrize(
    "sqlfluff",
    [
        "[sqlfluff]\ndialect = duckdb\n",  # no templater: the project's own is jinja's
        "[sqlfluff]\ntemplater = dbt\n",  # no dialect: the profile's
        "[sqlfluff]\ntemplater = dbt\ndialect = duckdb\n",
    ],
    ids=["dialect-only", "templater-only", "both"],
)
def test_lint_findings_equal_sqlfluffs_own(
    sqlfluff: str, env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    add_a_macro_and_sloppy_sql(demo_project)
    (demo_project / ".sqlfluff").write_text(sqlfluff)
    result = run_cli("lint", env=env)
    assert result.returncode == 1, result.stdout[-3000:]  # findings fail the lint verb
    lint = read_json(out_dir / "report.json")["lint"]
    ours = {(f["file"], f["line"], f["column"], f["rule"]) for f in lint["findings"]}

    profiles = peer_profiles(tmp_path / "peer", env["DBT_RUNNER_WAREHOUSE__PATH"])
    peer_env = env | {"DBT_PROFILES_DIR": str(profiles)}
    assert peer(peer_env, demo_project, "dbt", "deps").returncode == 0
    linted = peer(
        peer_env,
        demo_project,
        *("sqlfluff", "lint", "models", "snapshots", "--templater", "dbt"),
        *("--dialect", "duckdb", "--format", "json", "--nofail"),
    )
    assert linted.returncode == 0, linted.stderr[-3000:]
    records = json.loads(linted.stdout)
    theirs = {
        (r["filepath"], v["start_line_no"], v["start_line_pos"], v["code"])
        for r in records
        for v in r["violations"]
    }
    assert ours == theirs
    assert sorted(lint["files"]) == sorted(r["filepath"] for r in records)
    assert "models/marts/ignored.sql" not in lint["files"]
    assert any(f[0] == "models/marts/late_orders.sql" for f in ours)  # rendered, then linted
    assert not {f[3] for f in ours} & {"TMP", "PRS"}  # the project's macro was rendered
    assert lint["dialect"] == "duckdb"


# --- lineage: openlineage-dbt's dbt-ol -------------------------------------------------


def by_job(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each job's final event, as a backend would read the lineage: its inputs and
    outputs by dataset name, and the data quality assertions on each input."""
    jobs: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["eventType"] not in ("COMPLETE", "FAIL"):
            continue
        assertions = {
            dataset["name"]: sorted(
                (a["assertion"], a.get("column"), a["success"])
                for a in dataset.get("inputFacets", {})
                .get("dataQualityAssertions", {})
                .get("assertions", [])
            )
            for dataset in event.get("inputs", [])
        }
        jobs[event["job"]["name"]] = {
            "state": event["eventType"],
            "inputs": sorted(d["name"] for d in event.get("inputs", [])),
            "outputs": sorted(d["name"] for d in event.get("outputs", [])),
            "namespaces": sorted({d["namespace"] for d in event.get("outputs", [])}),
            "assertions": {name: found for name, found in assertions.items() if found},
        }
    return jobs


ORCHESTRATOR = {  # an Airflow task launching the run, as its OpenLineage provider says
    "OPENLINEAGE_PARENT_ID": "airflow/daily.dbt_build/01935a4e-7b3f-7c1d-9a2b-3c4d5e6f7a8b",
    "OPENLINEAGE_ROOT_PARENT_ID": "airflow/daily/01935a4e-0000-7000-8000-000000000001",
}


@pytest.mark.parametrize(
    ("broken", "orchestrated"),
    [(False, False), (True, False), (False, True)],
    ids=["passing", "broken-model-failing-test", "under-an-orchestrator"],
)
def test_lineage_names_and_describes_as_dbt_ol(
    broken: bool,
    orchestrated: bool,
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    tmp_path: Path,
    httpserver: HTTPServer,
) -> None:
    if broken:
        add_failures(demo_project)
    if orchestrated:
        env |= ORCHESTRATOR
    events = lineage_receiver(httpserver)
    profiles = peer_profiles(tmp_path / "peer", env["DBT_RUNNER_WAREHOUSE__PATH"])
    namespace = {"OPENLINEAGE_NAMESPACE": "analytics"}
    peer_env = (
        env
        | namespace
        | {
            "DBT_PROFILES_DIR": str(profiles),
            "OPENLINEAGE_URL": httpserver.url_for("/"),
            "PATH": f"{BIN}:{env['PATH']}",  # dbt-ol runs `dbt`
        }
    )
    assert peer(peer_env, demo_project, "dbt", "deps").returncode == 0
    theirs_run = peer(peer_env, demo_project, "dbt-ol", "build", "--target-path", "peer-target")
    assert theirs_run.returncode == (1 if broken else 0), theirs_run.stdout[-3000:]
    theirs = list(events)
    events.clear()

    env |= {
        "DBT_RUNNER_LINEAGE__URL": httpserver.url_for("/"),
        "DBT_RUNNER_LINEAGE__NAMESPACE": "analytics",
    }
    result = run_cli("run", env=env)
    assert result.returncode == (1 if broken else 0), result.stdout[-3000:]
    ours = list(events)
    report = read_json(out_dir / "report.json")
    assert report["lineage"]["events"] == len(ours) and report["lineage"]["error"] is None

    their_jobs, our_jobs = by_job(theirs), by_job(ours)
    # dbt-ol's wrapping job and ours: the same name, state and dbt facets.
    their_run, our_run = their_jobs.pop("dbt-run-demo"), our_jobs.pop("dbt-run-demo")
    assert their_run["state"] == our_run["state"] == ("FAIL" if broken else "COMPLETE")
    their_wrap = next(e for e in theirs if e["job"]["name"] == "dbt-run-demo")
    our_wrap = next(e for e in ours if e["job"]["name"] == "dbt-run-demo")
    for facet in ("dbt_version", "processing_engine", "dbt_run"):
        assert facet in their_wrap["run"]["facets"] and facet in our_wrap["run"]["facets"], facet
    assert our_wrap["run"]["facets"]["dbt_version"] == their_wrap["run"]["facets"]["dbt_version"]
    # Every job dbt-ol names, ours names the same, with the same datasets and assertions.
    for name, job in their_jobs.items():
        assert our_jobs.get(name) == job, name
    assert any(job["assertions"] for job in their_jobs.values())  # tests became assertions
    # Ours has only the documented additions besides: seeds, and a job per test.
    extra = set(our_jobs) - set(their_jobs)
    assert extra and all(
        name.startswith("test.demo.") or name.endswith(".seed") for name in extra
    ), sorted(extra)
    # The node events' parent is the run, as its own events name it (the orchestrator's
    # namespace when one launched it), and the root is named too; dbt-ol's say the same.
    run_id, wrapper = our_wrap["run"]["runId"], our_wrap["job"]
    assert wrapper["namespace"] == their_wrap["job"]["namespace"]
    assert wrapper["namespace"] == ("airflow" if orchestrated else "analytics")
    root = (
        {
            "run": {"runId": "01935a4e-0000-7000-8000-000000000001"},
            "job": {"namespace": "airflow", "name": "daily"},
        }
        if orchestrated
        else {"run": {"runId": run_id}, "job": {"namespace": "analytics", "name": "dbt-run-demo"}}
    )
    for event in ours:
        if event["job"]["name"] == "dbt-run-demo":
            continue
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_id
        assert parent["job"] == {"namespace": wrapper["namespace"], "name": "dbt-run-demo"}
        assert parent["root"] == root
    their_parents = [
        e["run"]["facets"]["parent"]["job"]
        for e in theirs
        if e["job"]["name"] != "dbt-run-demo" and "parent" in e["run"]["facets"]
    ]
    assert their_parents and all(
        job == {"namespace": wrapper["namespace"], "name": "dbt-run-demo"} for job in their_parents
    )


# --- build order: what a failure keeps from running, as dbt's own build ------------------


def add_an_orphan(project: Path) -> None:
    """A relationships test that fails (a test on two models) and a model downstream of
    both: the case dbt's fast test edges must order as its default edges do."""
    staging = project / "models" / "staging"
    (staging / "orphan_orders.sql").write_text("select 999 as customer_id\n")
    (staging / "_orphans.yml").write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": "orphan_orders",
                        "columns": [
                            {
                                "name": "customer_id",
                                "data_tests": [
                                    {
                                        "relationships": {
                                            "arguments": {
                                                "to": "ref('stg_customers')",
                                                "field": "customer_id",
                                            }
                                        }
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        )
    )
    (project / "models" / "marts" / "orphan_report.sql").write_text(
        "select o.customer_id from {{ ref('orphan_orders') }} as o\n"
        "join {{ ref('stg_customers') }} as c on o.customer_id = c.customer_id\n"
    )


def statuses(run_results: Path) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in read_json(run_results)["results"]}


def test_build_skips_what_dbts_own_build_skips(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """The runner has dbt order a build with its fast test edges (engine/startup.py):
    every node a failing model or test keeps from running is the one plain `dbt build`,
    with dbt's default edges, keeps from running."""
    add_failures(demo_project)
    add_an_orphan(demo_project)
    env.pop("DBT_USE_FAST_TEST_EDGES", None)
    profiles = peer_profiles(tmp_path / "peer", str(tmp_path / "peer.duckdb"))
    peer_env = env | {"DBT_PROFILES_DIR": str(profiles)}
    assert peer(peer_env, demo_project, "dbt", "deps").returncode == 0
    theirs_run = peer(peer_env, demo_project, "dbt", "build", "--target-path", "peer-target")
    assert theirs_run.returncode == 1, theirs_run.stdout[-3000:]
    theirs = demo_project / "peer-target" / "run_results.json"

    result = run_cli("run", env=env)
    assert result.returncode == 1, result.stdout[-3000:]
    run_id = read_json(out_dir / "report.json")["run_id"]
    ours = out_dir / "demo" / "dev" / "runs" / run_id / "phases" / "build" / "run_results.json"

    # The runner's full job loads seeds in a phase of their own, before its build.
    their_nodes = {u: s for u, s in statuses(theirs).items() if not u.startswith("seed.")}
    assert statuses(ours) == their_nodes
    skipped = {uid for uid, status in statuses(ours).items() if status == "skipped"}
    downstream = {"model.demo.orphan_report", "model.demo.after_broken", "model.demo.customers"}
    assert downstream <= skipped
    # The edges differ: dbt's default for the peer, the fast ones for the runner.
    assert read_json(theirs)["args"]["use_fast_test_edges"] is False
    assert read_json(ours)["args"]["use_fast_test_edges"] is True
