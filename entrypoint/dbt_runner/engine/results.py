"""dbt's result objects as the report's NodeResults: status, timing, thread, warehouse
figures, and a failed node's compiled SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dbt_runner.engine.nodes import clean, lines_of, warehouse_figures
from dbt_runner.report.model import NodeResult, outcome_of

# A failed node's compiled SQL in the report (the run page folds it): enough to read.
COMPILED_SQL_LIMIT = 20_000


def status_of(value: Any) -> str:
    return str(getattr(value, "value", value))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _timing(item: Any) -> tuple[datetime | None, datetime | None]:
    """A dbt result's start and end, from its compile and execute timings."""
    timings = getattr(item, "timing", None) or []
    starts = [_utc(t.started_at) for t in timings if t.started_at]
    ends = [_utc(t.completed_at) for t in timings if t.completed_at]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _compiled_sql(node: Any) -> str | None:
    sql = getattr(node, "compiled_code", None)
    return sql[:COMPILED_SQL_LIMIT] if isinstance(sql, str) and sql.strip() else None


def node_results(phase: str, result: Any) -> list[NodeResult]:
    """NodeResults from a dbt result (run, test, build, seed, snapshot or freshness)."""
    nodes: list[NodeResult] = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        if node is None:
            continue
        status = status_of(item.status)
        message = getattr(item, "message", None)
        started_at, finished_at = _timing(item)
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=status_of(node.resource_type),
                phase=phase,
                status=status,
                outcome=outcome_of(status),
                execution_time_s=round(float(getattr(item, "execution_time", 0) or 0), 3),
                message=clean(str(message)) if message else None,
                detail=lines_of(str(message)) if message else None,
                failures=getattr(item, "failures", None),
                relation=getattr(node, "relation_name", None),
                path=getattr(node, "original_file_path", None),
                started_at=started_at,
                finished_at=finished_at,
                thread=getattr(item, "thread_id", None) or None,
                **warehouse_figures(getattr(item, "adapter_response", None)),
                compiled_sql=_compiled_sql(node) if outcome_of(status) == "failed" else None,
            )
        )
    return nodes
