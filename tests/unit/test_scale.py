"""What the runner does after dbt grows with the project, not faster: the history
comparison, the history rows and the run page for 20,000 nodes cost about ten times
what they cost for 2,000 (a per-node scan of the history made it a hundred). A ratio in
one process, best of three in turns, so a slow machine does not fail it."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from dbt_runner.config import HistorySettings
from dbt_runner.outputs import history
from dbt_runner.report.html import NODE_ROWS, render
from dbt_runner.report.model import RunReport, now
from tests.support import node_result, run_report

SMALL, LARGE = 2_000, 20_000
# Linear work grows 10x; anything per node per node grows 100x.
MAX_RATIO = 25


def report_of(count: int, run: int = 0) -> RunReport:
    start = now() - timedelta(hours=run)
    nodes = [
        node_result(
            f"{'model' if i % 2 else 'test'}.p.n{i}",
            outcome="failed" if (i + run) % 7 == 0 else "ok",
            execution_time_s=0.5,
            started_at=start + timedelta(seconds=i / 100),
            finished_at=start + timedelta(seconds=i / 100 + 0.5),
            thread=f"Thread-{i % 4 + 1}",
        )
        for i in range(count)
    ]
    made: RunReport = run_report(nodes=nodes, run_id=f"r{run}", started_at=start)
    return made


def ratio_of(large: Callable[[], Any], small: Callable[[], Any]) -> float:
    """large's best time over small's, in turns, so a burst of load on a shared machine
    (the other tests of a parallel run, another job) weighs on both alike. The cyclic
    collector is paused while timing: its full passes walk whatever else this process
    holds (the unit suite's leftovers), which is not the work under test (in a run,
    finishing starts with everything older frozen: engine/startup.settle)."""
    best = {large: float("inf"), small: float("inf")}
    for _ in range(3):
        for work in (small, large):
            gc.collect()
            gc.disable()
            started = time.perf_counter()
            try:
                work()
            finally:
                spent = time.perf_counter() - started
                gc.enable()
            best[work] = min(best[work], spent)
    return best[large] / best[small]


def history_work(count: int) -> Callable[[], Any]:
    settings = HistorySettings()
    earlier = [
        history.decode(history.encode(history.rows(report_of(count, run))))
        for run in range(1, settings.runs + 1)
    ]
    current = report_of(count)

    def compare() -> Any:
        history.regressions(current.nodes, earlier, settings)
        history.flaky_tests(current.nodes, earlier, settings)
        return history.encode(history.rows(current))

    return compare


def test_the_history_comparison_grows_with_the_nodes_not_faster() -> None:
    small, large = history_work(SMALL), history_work(LARGE)
    ratio = ratio_of(large, small)
    assert ratio < MAX_RATIO, f"history: 20,000 nodes cost {ratio:.0f}x 2,000"


def test_the_run_page_grows_with_the_nodes_not_faster() -> None:
    small, large = report_of(SMALL), report_of(LARGE)
    ratio = ratio_of(lambda: render(large), lambda: render(small))
    assert ratio < MAX_RATIO, f"run page: 20,000 nodes cost {ratio:.0f}x 2,000"


def test_the_checks_can_fail() -> None:
    """A per-node scan of the history, as it was, is caught by the same bound."""

    def quadratic(count: int) -> Callable[[], Any]:
        rows = [{"unique_id": f"n{i}"} for i in range(count // 10)]
        return lambda: [
            sum(1 for row in rows if row["unique_id"] == f"n{i}") for i in range(count // 10)
        ]

    ratio = ratio_of(quadratic(LARGE), quadratic(SMALL))
    assert ratio >= MAX_RATIO


def test_the_all_nodes_table_shows_its_first_rows_and_says_where_the_rest_are() -> None:
    """A browser parses a 20,000-row table for a second more before it shows the page:
    the table stops at NODE_ROWS rows; the bars and the counts still cover every node."""
    large = render(report_of(NODE_ROWS + 500))
    table = large.split('<section id="nodes">', 1)[1]
    assert table.count("<tr><td><code>") == NODE_ROWS
    assert f"The first {NODE_ROWS} of {NODE_ROWS + 500}" in table and "report.json" in table
    assert large.count('<rect class="bar ') == NODE_ROWS + 500
    small = render(report_of(10)).split('<section id="nodes">', 1)[1]
    assert small.count("<tr><td><code>") == 10 and 'id="more-nodes"' not in small
