"""Run metrics in CloudWatch's Embedded Metric Format: real runs of the demo with JSON
logs, their EMF documents checked against the specification and against the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dbt_runner.outputs.metrics import NODE_METRICS, RUN_METRICS
from tests.integration.test_failures import add_failures
from tests.support import read_json, run_cli

# The EMF specification (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
# CloudWatch_Embedded_Metric_Format_Specification.html), as a schema: the `_aws`
# metadata, metric directives of at most 100 metrics and dimension sets of at most 30
# keys, and CloudWatch's units.
UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
    "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
    "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]  # fmt: skip
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "items": {"type": "string", "minLength": 1},
                                    "maxItems": 30,
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1},
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def validate_emf(document: dict[str, Any]) -> None:
    """The schema, and the rules it cannot say: each dimension a string member of the
    document, each metric a number (or numbers)."""
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension in (key for keys in directive["Dimensions"] for key in keys):
            assert isinstance(document[dimension], str), dimension
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert all(isinstance(v, (int, float)) for v in values), metric["Name"]


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [line for line in lines if "_aws" in line]


def test_the_spec_check_can_fail() -> None:
    good: dict[str, Any] = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {
                    "Namespace": "n",
                    "Dimensions": [["A"]],
                    "Metrics": [{"Name": "M", "Unit": "Count"}],
                }
            ],
        },
        "A": "a",
        "M": 1,
    }
    validate_emf(good)
    for broken in (
        {**good, "M": "one"},
        {**good, "A": 1},
        {**good, "_aws": {**good["_aws"], "Timestamp": "now"}},
    ):
        with pytest.raises((AssertionError, jsonschema.ValidationError)):
            validate_emf(broken)


def test_a_successful_run_reports_its_metrics(env: dict[str, str], out_dir: Path) -> None:
    env |= {"DBT_RUNNER_LOG_FORMAT": "json", "DBT_RUNNER_METRICS_NAMESPACE": "Team/dbt"}
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    [document] = emf_documents(result.stdout)  # per-node documents are opt-in
    validate_emf(document)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Team/dbt"
    assert directive["Dimensions"] == [["Project", "Env", "Job"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        name: unit for name, unit, _ in RUN_METRICS
    }
    assert (document["Project"], document["Env"], document["Job"]) == ("demo", "dev", "full")
    assert document["RunId"] == report["run_id"]
    expected = {
        "RunSucceeded": 1,
        "ExitCode": 0,
        "NodesSucceeded": 27,  # 3 seeds, 6 models, a snapshot, 16 tests, a unit test
        "NodesFailed": 0,
        "NodesErrored": 0,
        "NodesSkipped": 0,
        "ModelsBuilt": 6,
        "TestsFailed": 0,
        "FreshnessWarnings": 0,
        "StatePromoted": 0,  # no state URL
        "Regressions": 0,  # a first run: no history to compare with
        "FlakyTests": 0,
    }
    assert {name: document[name] for name in expected} == expected
    assert document["RunDuration"] == report["duration_s"]  # one clock for every reader


def test_a_failing_run_reports_its_failures_and_per_node_metrics(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    add_failures(demo_project)
    env |= {"DBT_RUNNER_LOG_FORMAT": "json", "DBT_RUNNER_METRICS_PER_NODE": "true"}
    result = run_cli("run", env=env)
    assert result.returncode == 1
    documents = emf_documents(result.stdout)
    for document in documents:
        validate_emf(document)
    run = next(d for d in documents if "Node" not in d)
    assert (run["RunSucceeded"], run["ExitCode"]) == (0, 1)
    assert run["NodesErrored"] == 1 and run["TestsFailed"] == 1 and run["NodesFailed"] == 1
    report = read_json(out_dir / "report.json")
    skipped = sum(n["outcome"] == "skipped" for n in report["nodes"])
    assert run["NodesSkipped"] == skipped > 0
    nodes = {d["Node"]: d for d in documents if "Node" in d}
    broken = nodes["model.demo.broken_model"]
    assert (broken["NodeSucceeded"], broken["Status"]) == (0, "error")
    assert broken["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Project", "Env", "Job", "Node"]
    ]
    assert {m["Name"] for m in broken["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        name for name, _, _ in NODE_METRICS
    }
    assert nodes["model.demo.orders"]["NodeSucceeded"] == 1


def test_metrics_are_off_in_text_logs_and_a_bad_mode_is_refused(env: dict[str, str]) -> None:
    quiet = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert quiet.returncode == 0 and '"_aws"' not in quiet.stdout
    bogus = run_cli("run", env=env | {"DBT_RUNNER_METRICS": "bogus"})
    assert bogus.returncode == 3 and "DBT_RUNNER_METRICS='bogus'" in bogus.stderr
    # Namespaces CloudWatch refuses (its metrics would be lost): refused before anything.
    for namespace, said in (("AWS/dbt", "reserved for AWS"), ("équipe/dbt", "ASCII")):
        refused = run_cli("check", env=env | {"DBT_RUNNER_METRICS_NAMESPACE": namespace})
        assert refused.returncode == 3 and said in refused.stderr, refused.stderr
        assert "DBT_RUNNER_METRICS_NAMESPACE" in refused.stderr
