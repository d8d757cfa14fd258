"""OpenLineage events from real runs, received by a real HTTP server; a dead endpoint."""

from __future__ import annotations

import socket
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
from pytest_httpserver import HTTPServer

from tests.integration.test_failures import add_failures
from tests.support import delivered, hook, lineage_receiver, read_json, run_cli

API_KEY = "ol-key-1234"

# The OpenLineage RunEvent as its spec (spec/OpenLineage.json, 2-0-2) requires it:
# required fields, their formats, and the base facet every facet carries.
_FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {
        "_producer": {"type": "string", "format": "uri"},
        "_schemaURL": {"type": "string", "format": "uri"},
    },
}
_FACETS = {"type": "object", "additionalProperties": _FACET}
_DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "facets": _FACETS,
        "inputFacets": _FACETS,
        "outputFacets": _FACETS,
    },
}
RUN_EVENT = {
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _FACETS},
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {
                "namespace": {"type": "string", "minLength": 1},
                "name": {"type": "string", "minLength": 1},
                "facets": _FACETS,
            },
        },
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
}
NODE_PHASES = {"seed", "snapshot", "run", "test", "build"}


def node_of(event: dict[str, Any]) -> str | None:
    node = event["job"].get("facets", {}).get("dbt_node")
    return node["unique_id"] if node else None


def test_events_per_node_and_job(
    env: dict[str, str], demo_project: Path, out_dir: Path, httpserver: HTTPServer
) -> None:
    add_failures(demo_project)
    events = lineage_receiver(httpserver, API_KEY)
    env |= hook(httpserver) | {
        "DBT_RUNNER_LINEAGE__URL": httpserver.url_for("/"),
        "DBT_RUNNER_LINEAGE__API_KEY": API_KEY,
        "DBT_RUNNER_LINEAGE__NAMESPACE": "analytics",
    }
    result = run_cli("run", env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    assert report["lineage"] == {
        "url": httpserver.url_for("/").rstrip("/") + "/",
        "events": len(events),
        "error": None,
    }
    for event in events:
        jsonschema.validate(event, RUN_EVENT, format_checker=jsonschema.FormatChecker())
        assert event["job"]["namespace"] == "analytics"

    # The job: first START, last FAIL (the run failed), the parent of every other event.
    job, nodes = events[0], events[1:-1]
    # dbt-ol's job per tested model (test_peers.py compares those with dbt-ol's own).
    assertions = [e for e in nodes if e["job"]["name"].endswith(".build.test")]
    nodes = [e for e in nodes if e not in assertions]
    assert {e["job"]["facets"]["jobType"]["jobType"] for e in assertions} == {"TEST"}
    assert (job["eventType"], job["job"]["name"]) == ("START", "dbt-run-demo")
    assert (events[-1]["eventType"], events[-1]["run"]["runId"]) == ("FAIL", job["run"]["runId"])
    # One clock: the job's events, the webhook's body and the report say the same times.
    [body] = delivered(httpserver)
    same = [datetime.fromisoformat(report[k]) for k in ("started_at", "finished_at")]
    assert body["finished_at"] is not None and same[0] < same[1]
    assert [datetime.fromisoformat(body[k]) for k in ("started_at", "finished_at")] == same
    assert [datetime.fromisoformat(e["eventTime"]) for e in (job, events[-1])] == same
    for event in nodes:
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == job["run"]["runId"]
        assert parent["job"] == {"namespace": "analytics", "name": "dbt-run-demo"}

    # One START and one COMPLETE or FAIL per executed model, seed, snapshot and test.
    executed = {
        n["unique_id"]: n["outcome"]
        for n in report["nodes"]
        if n["phase"] in NODE_PHASES
        and n["outcome"] != "skipped"
        and n["resource_type"] in ("model", "seed", "snapshot", "test")
    }
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in nodes:
        by_node[str(node_of(event))].append(event)
    assert set(by_node) == set(executed)
    assert {kind.split(".")[0] for kind in executed} == {"model", "seed", "snapshot", "test"}
    for unique_id, pair in by_node.items():
        assert len(pair) == 2, [(e["job"]["name"], e["eventType"]) for e in pair]
        start, end = pair
        assert start["eventType"] == "START" and start["run"]["runId"] == end["run"]["runId"]
        assert end["eventType"] == ("FAIL" if executed[unique_id] == "failed" else "COMPLETE")
    assert by_node["model.demo.broken_model"][1]["eventType"] == "FAIL"
    assert by_node["test.demo.assert_no_orders"][1]["eventType"] == "FAIL"

    # Datasets named like openlineage-dbt: the warehouse's namespace, database.schema.table.
    orders = by_node["model.demo.orders"][1]
    warehouse = f"duckdb://{env['DBT_RUNNER_WAREHOUSE__PATH']}"
    assert [d["namespace"] for d in orders["outputs"]] == [warehouse]
    assert orders["outputs"][0]["name"].endswith(".orders")
    inputs = {d["name"].rsplit(".", 1)[-1] for d in orders["inputs"]}
    assert inputs == {"stg_orders", "stg_payments"}
    seed = by_node["seed.demo.raw_orders"][1]
    assert seed["outputs"][0]["name"].endswith(".raw_orders")
    kinds = Counter(e["job"]["facets"]["jobType"]["jobType"] for e in nodes)
    assert set(kinds) == {"MODEL", "SEED", "SNAPSHOT", "TEST"}


def test_a_dead_endpoint_is_a_warning_and_bounded(env: dict[str, str], out_dir: Path) -> None:
    # A server that accepts connections and never answers: the worst kind of down.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        env |= {
            "DBT_RUNNER_LINEAGE__URL": f"http://127.0.0.1:{port}",
            "DBT_RUNNER_LINEAGE__TIMEOUT_S": "1",
            "DBT_RUNNER_JOB": "custom",
            "DBT_RUNNER_PHASES": "deps,seed",
        }
        result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_json(out_dir / "report.json")
    assert report["status"] == "success"
    lineage = report["lineage"]
    assert lineage["events"] == 0 and "timed out" in lineage["error"].lower()
    assert any(w.startswith("lineage: 0 event(s) sent") for w in report["warnings"])
    # One event tried, then the rest given up: not a timeout per event.
    assert report["timings"]["lineage"] < 10, report["timings"]
