"""Run history: every run's node results, kept beside its artifacts and read back.

Layout under the artifacts URL (one gzipped JSON-lines file per run, Hive-style date
partitions, so DuckDB's `read_json_auto(..., hive_partitioning = true)` and Athena's
JSON SerDe read it as a table without glue code):

    <project>/<env>/history/date=YYYY-MM-DD/<UTC start>_<run_id>.jsonl.gz

Before writing its own file a run reads the latest runs back and compares: a node
markedly slower than the median of its recent successful runs is a regression; a
test that failed in more than one of the recent runs and passed in another is flaky.
"""

from __future__ import annotations

import gzip
import logging
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter

from dbt_runner.config import HistorySettings
from dbt_runner.errors import RunnerError
from dbt_runner.report.model import Flaky, HistoryInfo, NodeResult, Regression, RunReport
from dbt_runner.storage import Storage, join_key
from dbt_runner.storage.keys import history_key as history_folder

log = logging.getLogger(__name__)

SUFFIX = ".jsonl.gz"
_NODES = TypeAdapter(list[NodeResult])
# Every row has every column (null when unknown), so a reader infers one schema.
NODE_COLUMNS = (
    "unique_id",
    "name",
    "resource_type",
    "phase",
    "status",
    "outcome",
    "execution_time_s",
    "started_at",
    "finished_at",
    "thread",
    "owner",
    "rows_affected",
    "bytes_processed",
    "bytes_billed",
)
TESTS = ("test", "unit_test")

Row = dict[str, Any]


def history_prefix(project: str, env: str) -> str:
    return history_folder(project, env)


def history_key(report: RunReport) -> str:
    day = report.started_at.date().isoformat()
    stamp = report.started_at.strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}_{report.run_id}{SUFFIX}"
    return join_key(history_prefix(str(report.project), report.env), f"date={day}", name)


def rows(report: RunReport) -> list[Row]:
    """One row per node result, with the run's own columns (one dump of every node: a
    per-node dump costs seconds at 20,000 nodes)."""
    run = {
        "run_id": report.run_id,
        "run_started_at": report.started_at.isoformat(),
        "project": report.project,
        "env": report.env,
        "job": report.job,
        "run_status": report.status,
    }
    dumped = _NODES.dump_python(report.nodes, mode="json", include={"__all__": set(NODE_COLUMNS)})
    return [{**run, **{column: values.get(column) for column in NODE_COLUMNS}} for values in dumped]


def encode(lines: Iterable[Row]) -> bytes:
    text = b"".join(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n" for line in lines)
    return gzip.compress(text, mtime=0)


def decode(data: bytes) -> list[Row]:
    """The rows of one history file (orjson: a window of 20,000-node runs is read in a
    fraction of a second)."""
    lines = [line for line in gzip.decompress(data).splitlines() if line.strip()]
    rows: list[Row] = orjson.loads(b"[" + b",".join(lines) + b"]")
    return rows


def recent_runs(storage: Storage, report: RunReport, settings: HistorySettings) -> list[list[Row]]:
    """The latest `settings.runs` earlier runs' rows, newest first: the date partitions
    are listed back from the run's day until there are enough (at most `days`)."""
    prefix = history_prefix(str(report.project), report.env)
    own = history_key(report).rsplit("/", 1)[-1]
    keys: list[str] = []
    day = report.started_at.date()
    for back in range(settings.days):
        partition = join_key(prefix, f"date={(day - timedelta(days=back)).isoformat()}")
        found = [k for k in storage.list_keys(partition) if k.endswith(SUFFIX)]
        keys += sorted((k for k in found if not k.endswith(own)), reverse=True)
        if len(keys) >= settings.runs:
            break
    runs = []
    for key in keys[: settings.runs]:
        data = storage.get_bytes(key)
        if data:
            runs.append(decode(data))
    return runs


def _durations(runs: list[list[Row]], wanted: set[str], limit: int) -> dict[str, list[float]]:
    """The `wanted` nodes' durations in their latest successful runs (at most `limit`),
    newest first: one pass over every run, whatever the number of nodes."""
    found: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        slowest: dict[str, float] = {}
        for row in run:
            unique_id = row.get("unique_id")
            if unique_id in wanted and row.get("outcome") == "ok":
                took = float(row["execution_time_s"] or 0)
                slowest[unique_id] = max(took, slowest.get(unique_id, took))
        for unique_id, took in slowest.items():
            if len(found[unique_id]) < limit:
                found[unique_id].append(took)
    return found


def regressions(
    nodes: list[NodeResult], runs: list[list[Row]], settings: HistorySettings
) -> list[Regression]:
    """Nodes this run finished markedly slower than their recent median."""
    found = []
    wanted = {n.unique_id for n in nodes if n.outcome == "ok" and n.phase != "freshness"}
    durations = _durations(runs, wanted, settings.runs)
    for node in nodes:
        if node.outcome != "ok" or node.phase == "freshness":
            continue
        earlier = durations.get(node.unique_id, [])
        if len(earlier) < settings.min_runs:
            continue
        median = statistics.median(earlier)
        slower = node.execution_time_s - median
        if node.execution_time_s >= settings.slower_ratio * median and (
            slower >= settings.slower_floor_s
        ):
            found.append(
                Regression(
                    unique_id=node.unique_id,
                    duration_s=node.execution_time_s,
                    median_s=round(median, 3),
                    runs=len(earlier),
                    owner=node.owner,
                )
            )
    return sorted(found, key=lambda r: r.median_s - r.duration_s)


def _outcomes(run: list[Row]) -> dict[str, str]:
    """Each test's outcome in one run (its worst, if it ran twice)."""
    outcomes: dict[str, str] = {}
    for row in run:
        if row.get("resource_type") not in TESTS or row.get("outcome") == "skipped":
            continue
        if outcomes.get(row["unique_id"]) != "failed":
            outcomes[row["unique_id"]] = row["outcome"]
    return outcomes


def flaky_tests(
    nodes: list[NodeResult], runs: list[list[Row]], settings: HistorySettings
) -> list[Flaky]:
    """Tests of this run that failed in more than one of their latest runs (this one
    included) and passed in at least one."""
    current: list[Row] = [
        {"unique_id": n.unique_id, "resource_type": n.resource_type, "outcome": n.outcome}
        for n in nodes
    ]
    seen: dict[str, list[str]] = defaultdict(list)
    for run in [current, *runs]:
        for unique_id, outcome in _outcomes(run).items():
            if len(seen[unique_id]) < settings.runs:
                seen[unique_id].append(outcome)
    owners = {node.unique_id: node.owner for node in nodes}
    found = []
    for unique_id in _outcomes(current):
        outcomes = seen[unique_id]
        failed = outcomes.count("failed")
        if failed >= 2 and len(outcomes) > failed:
            owner = owners[unique_id]
            found.append(Flaky(unique_id=unique_id, failed=failed, runs=len(outcomes), owner=owner))
    return sorted(found, key=lambda f: (-f.failed, f.unique_id))


def record(
    storage: Storage, report: RunReport, settings: HistorySettings
) -> tuple[HistoryInfo, list[str]]:
    """Compare this run with its recent history, then append it: what it found, and the
    warnings (neither may cost the run: a history that cannot be read or written is a
    warning)."""
    info, warnings = HistoryInfo(), []
    try:
        runs = recent_runs(storage, report, settings)
    except (RunnerError, OSError, ValueError) as exc:
        warnings.append(f"the run history could not be read: {_why(exc)}")
        runs = []
    info.runs_compared = len(runs)
    info.previous_run = runs[0][0]["run_id"] if runs and runs[0] else None
    info.regressions = regressions(report.nodes, runs, settings)
    info.flaky = flaky_tests(report.nodes, runs, settings)
    _say(info)
    if not report.nodes:
        return info, warnings  # nothing ran: no file
    key = history_key(report)
    try:
        storage.put_bytes(key, encode(rows(report)))
    except (RunnerError, OSError) as exc:
        warnings.append(f"the run history was not written: {_why(exc)}")
        return info, warnings
    info.url = storage.url_for(key)
    return info, warnings


def _say(info: HistoryInfo, limit: int = 20) -> None:
    """A log line per finding, the first `limit` of each kind (the report has them all)."""
    for regression in info.regressions[:limit]:
        log.warning(
            "regression: %s took %.1f s, its median is %.1f s",
            regression.unique_id,
            regression.duration_s,
            regression.median_s,
        )
    for test in info.flaky[:limit]:
        log.warning(
            "flaky: %s failed in %d of its last %d runs", test.unique_id, test.failed, test.runs
        )
    more = max(0, len(info.regressions) - limit) + max(0, len(info.flaky) - limit)
    if more:
        log.warning("and %d more regression(s) or flaky test(s): see the report", more)


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, RunnerError) else str(exc)
