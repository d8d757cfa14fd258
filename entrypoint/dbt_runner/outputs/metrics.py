"""Metrics: every run's figures in CloudWatch's Embedded Metric Format, on stdout.

With DBT_RUNNER_METRICS=emf (the default when DBT_RUNNER_LOG_FORMAT=json) the run ends
with one EMF document: the awslogs driver (ECS) or Fluent Bit (EKS) ships stdout to
CloudWatch Logs, which extracts the metrics with no agent and no PutMetricData, so
an alarm is a stack parameter, never an image (docs/metrics-and-lineage.md). The
documents are written by AWS's own `aws-embedded-metrics` library.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from dbt_runner.config import Settings
from dbt_runner.engine.kinds import BUILT_TYPES
from dbt_runner.report.model import RunReport

RUN_METRICS = (
    # name, unit, what it counts
    ("RunDuration", "Seconds", "the whole run, publishing and notifying included"),
    ("RunSucceeded", "Count", "1 when the run exited 0, else 0"),
    ("ExitCode", "None", "the run's exit code (docs/faults.md)"),
    ("NodesSucceeded", "Count", "nodes that succeeded or passed"),
    ("NodesFailed", "Count", "tests that failed"),
    ("NodesErrored", "Count", "nodes that errored"),
    ("NodesSkipped", "Count", "nodes skipped (a failed parent, a stop)"),
    ("NodesWarned", "Count", "nodes that warned"),
    ("ModelsBuilt", "Count", "models built (ok or warn)"),
    ("TestsFailed", "Count", "data and unit tests that failed or errored"),
    ("FreshnessWarnings", "Count", "sources past their warn_after"),
    ("StatePromoted", "Count", "1 when this run became the state"),
    ("Regressions", "Count", "nodes markedly slower than their recent median (Run history)"),
    ("FlakyTests", "Count", "tests that failed in more than one recent run (Run history)"),
)
NODE_METRICS = (
    ("NodeDuration", "Seconds", "a node's execution time"),
    ("NodeSucceeded", "Count", "1 when the node succeeded, passed or warned"),
)


def emit_for(settings: Settings, report: RunReport) -> None:
    """The run's metrics, when the settings ask for them (DBT_RUNNER_METRICS)."""
    mode, log_format = settings.metrics.value, settings.log_format.value
    if mode == "emf" or (mode == "auto" and log_format == "json"):
        emit(report, settings.metrics_namespace, settings.metrics_per_node)


def run_values(report: RunReport) -> dict[str, float]:
    """The run's metrics, from its report."""
    nodes = [n for n in report.nodes if n.phase != "freshness"]
    statuses = [n.status for n in nodes]
    tests = [n for n in nodes if n.resource_type in ("test", "unit_test")]
    return {
        "RunDuration": report.duration_s,
        "RunSucceeded": int(report.exit_code == 0),
        "ExitCode": report.exit_code,
        "NodesSucceeded": sum(n.outcome == "ok" for n in nodes),
        "NodesFailed": statuses.count("fail"),
        "NodesErrored": statuses.count("error") + statuses.count("runtime error"),
        "NodesSkipped": sum(n.outcome == "skipped" for n in nodes),
        "NodesWarned": sum(n.outcome == "warn" for n in nodes),
        "ModelsBuilt": sum(
            n.resource_type == "model" and n.outcome in ("ok", "warn") for n in nodes
        ),
        "TestsFailed": sum(n.status in ("fail", "error", "runtime error") for n in tests),
        "FreshnessWarnings": sum(
            n.phase == "freshness" and n.outcome == "warn" for n in report.nodes
        ),
        "StatePromoted": int(bool(report.state and report.state.promoted)),
        "Regressions": len(report.history.regressions) if report.history else 0,
        "FlakyTests": len(report.history.flaky) if report.history else 0,
    }


def emit(report: RunReport, namespace: str, per_node: bool) -> None:
    """Write the run's EMF document (and one per node, when asked) to stdout."""
    # Local: stdout, with no probing of instance metadata for an environment.
    os.environ.setdefault("AWS_EMF_ENVIRONMENT", "Local")
    asyncio.run(_flush(report, namespace, per_node))


async def _flush(report: RunReport, namespace: str, per_node: bool) -> None:
    from aws_embedded_metrics.logger.metrics_logger_factory import create_metrics_logger

    dimensions = {"Project": report.project or "unknown", "Env": report.env, "Job": report.job}
    run = create_metrics_logger()
    _describe(run, namespace, dimensions, report)
    units = {name: unit for name, unit, _ in RUN_METRICS}
    for name, value in run_values(report).items():
        run.put_metric(name, value, units[name])
    await run.flush()
    for node in report.nodes if per_node else []:
        if node.resource_type not in BUILT_TYPES and node.resource_type not in (
            "test",
            "unit_test",
        ):
            continue
        logger = create_metrics_logger()
        _describe(logger, namespace, dimensions | {"Node": node.unique_id}, report)
        logger.set_property("Status", node.status)
        logger.put_metric("NodeDuration", node.execution_time_s, "Seconds")
        logger.put_metric("NodeSucceeded", int(node.outcome in ("ok", "warn")), "Count")
        await logger.flush()


def _describe(logger: Any, namespace: str, dimensions: dict[str, str], report: RunReport) -> None:
    logger.set_namespace(namespace)
    logger.set_dimensions(dimensions)
    logger.set_property("RunId", report.run_id)
    logger.set_property("Status", report.status)
