"""Regressions and flaky tests from history rows; the rows' shape; adapter figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct

from dbt_runner.config import HistorySettings
from dbt_runner.engine.nodes import warehouse_figures
from dbt_runner.outputs.history import decode, encode, flaky_tests, history_key, regressions, rows
from dbt_runner.report.model import NodeResult, RunReport
from tests.support import node_result

SETTINGS = HistorySettings(runs=5, min_runs=3, slower_ratio=2.0, slower_floor_s=10.0)


def node(unique_id: str, seconds: float = 1.0, outcome: str = "ok", **extra: Any) -> NodeResult:
    node: NodeResult = node_result(unique_id, outcome, execution_time_s=seconds, **extra)
    return node


def run(*nodes: NodeResult) -> list[dict[str, Any]]:
    return [n.model_dump(mode="json") for n in nodes]


def test_a_regression_needs_the_ratio_the_floor_and_enough_runs() -> None:
    earlier = [run(node("model.p.a", 10), node("model.p.b", 1)) for _ in range(3)]
    current = [node("model.p.a", 25), node("model.p.b", 9)]
    found = regressions(current, earlier, SETTINGS)
    # a: 2.5x and 15 s slower; b: 9x but only 8 s slower (under the floor).
    assert [(r.unique_id, r.median_s, r.runs) for r in found] == [("model.p.a", 10.0, 3)]
    assert regressions(current, earlier[:2], SETTINGS) == []  # two runs: too few to judge


def test_the_median_is_of_successful_runs_only() -> None:
    earlier = [
        run(node("model.p.a", 100, "failed")),
        run(node("model.p.a", 10)),
        run(node("model.p.a", 12)),
        run(node("model.p.a", 11)),
    ]
    (found,) = regressions([node("model.p.a", 40)], earlier, SETTINGS)
    assert (found.median_s, found.runs) == (11.0, 3)


def test_flaky_means_failed_twice_and_passed_once() -> None:
    flaky, broken, once = "test.p.flaky", "test.p.broken", "test.p.once"
    earlier = [
        run(node(flaky, outcome="failed"), node(broken, outcome="failed"), node(once)),
        run(node(flaky), node(broken, outcome="failed"), node(once)),
    ]
    current = [
        node(flaky, outcome="failed"),
        node(broken, outcome="failed"),
        node(once, outcome="failed"),
    ]
    found = flaky_tests(current, earlier, SETTINGS)
    # broken fails every time (broken, not flaky); once failed once.
    assert [(f.unique_id, f.failed, f.runs) for f in found] == [(flaky, 2, 3)]


def test_flaky_reads_only_the_last_runs() -> None:
    flaky = "test.p.flaky"
    old_failures = [run(node(flaky, outcome="failed")) for _ in range(3)]
    earlier = [run(node(flaky)) for _ in range(4)] + old_failures
    assert flaky_tests([node(flaky, outcome="failed")], earlier, SETTINGS) == []


def test_rows_have_every_column_and_round_trip() -> None:
    report = RunReport(
        runner_version="0",
        env="prod",
        job="full",
        run_id="r1",
        project="demo",
        started_at=datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC),
    )
    report.nodes = [
        node("model.p.a", 2, bytes_billed=10485760),
        node("test.p.t", outcome="skipped"),
    ]
    lines = rows(report)
    assert len({tuple(sorted(line)) for line in lines}) == 1  # one schema for every row
    assert lines[0]["bytes_billed"] == 10485760 and lines[1]["bytes_billed"] is None
    assert decode(encode(lines)) == lines
    assert history_key(report) == "demo/prod/history/date=2026-11-23/20261123T010203Z_r1.jsonl.gz"


def test_warehouse_figures_from_results_and_events() -> None:
    bigquery = {"bytes_processed": 2048, "bytes_billed": 10485760, "rows_affected": 7}
    assert warehouse_figures(bigquery) == bigquery
    struct = Struct()
    struct.update({"_message": "SELECT 5", "rows_affected": 5})
    assert warehouse_figures(struct) == {
        "rows_affected": 5,
        "bytes_processed": None,
        "bytes_billed": None,
    }
    assert warehouse_figures({"rows_affected": -1}) == dict.fromkeys(bigquery)
