"""Node results as dbt finishes them, through dbtRunner's event callbacks.

dbt hands back its results only when a command completes; a run stopped by a signal
or the timeout would lose every node it finished. The `NodeRecorder` listens to dbt's
events instead: each `NodeFinished` becomes a NodeResult at once (with its start, end
and thread, for the timeline), and dbt's own error messages are kept, so a phase that
could not run says why ("connection refused" with host and port), not "see the log".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypedDict

from dbt_runner.engine.kinds import NODE_COMMANDS
from dbt_runner.report.model import NodeResult, outcome_of

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# dbt debug reports its failed checks as info-level DebugCmdResult events after this.
_DEBUG_FAILED = re.compile(r"\d+ checks? failed")
MESSAGE_LIMIT = 2000


def clean(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """dbt's text as one line: no colour codes, whitespace collapsed."""
    return " ".join(_ANSI.sub("", text).split())[:limit]


def lines_of(text: str | None) -> str | None:
    """dbt's text with its line breaks (no colour codes, no trailing blanks), when it has
    more than one line: a unit test's table; None otherwise (`clean` says it in one)."""
    if not text:
        return None
    lines = [line.rstrip() for line in _ANSI.sub("", text).splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)[: MESSAGE_LIMIT * 5] if len(lines) > 1 else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value >= 0 else None


class WarehouseFigures(TypedDict):
    rows_affected: int | None
    bytes_processed: int | None
    bytes_billed: int | None


def warehouse_figures(response: Any) -> WarehouseFigures:
    """Rows affected and bytes processed and billed, from dbt's adapter_response (a
    dict in run results, a protobuf Struct in events); None where the adapter is silent."""
    if response is not None and not isinstance(response, dict):
        from google.protobuf.json_format import MessageToDict

        response = MessageToDict(response)
    response = response or {}
    return WarehouseFigures(
        rows_affected=_count(response.get("rows_affected")),
        bytes_processed=_count(response.get("bytes_processed")),
        bytes_billed=_count(response.get("bytes_billed")),
    )


def _timestamp(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class NodeRecorder:
    """A dbtRunner callback for one phase at a time (`begin` starts the next)."""

    def __init__(self, path_of: Callable[[str], str | None] = lambda unique_id: None) -> None:
        self.path_of = path_of
        self._lock = threading.Lock()
        self.began: set[str] = set()  # every node a node command started, in any phase
        self.observers: list[Callable[[NodeResult], None]] = []  # told of each node at once
        self.begin("")

    def begin(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self.nodes: list[NodeResult] = []
            self.errors: list[str] = []
            self.run_results_written = False
            self._debug_failed = False
            self.unmatched: list[str] = []  # selection criteria dbt found no node for
            self.full_parse: str | None = None  # why dbt did not use its parse cache

    def __call__(self, event: Any) -> None:
        name = event.info.name
        if name == "NodeStart":
            if self.phase in NODE_COMMANDS:  # not compiling (docs), listing or testing
                with self._lock:
                    self.began.add(str(event.data.node_info.unique_id))
        elif name == "NodeFinished":
            node = self._node(event.data)
            with self._lock:
                self.nodes.append(node)
            for observer in self.observers:
                observer(node)
        elif name == "ArtifactWritten" and event.data.artifact_type == "RunExecutionResult":
            self.run_results_written = True
        elif name == "UnableToPartialParse":
            self.full_parse = str(event.data.reason)
        elif name == "NoNodesForSelectionCriteria":
            with self._lock:
                self.unmatched.append(str(event.data.spec_raw))
        elif event.info.level == "error" or self._debug_failure(name, event.info.msg):
            with self._lock:
                self.errors.append(clean(event.info.msg))

    def _debug_failure(self, name: str, message: str) -> bool:
        if name != "DebugCmdResult":
            return False
        if _DEBUG_FAILED.search(clean(message)):
            self._debug_failed = True
            return False
        return self._debug_failed

    def _node(self, data: Any) -> NodeResult:
        info, result = data.node_info, data.run_result
        status = str(result.status)
        return NodeResult(
            unique_id=info.unique_id,
            name=info.node_name,
            resource_type=info.resource_type,
            phase=self.phase,
            status=status,
            outcome=outcome_of(status),
            execution_time_s=round(float(result.execution_time or 0), 3),
            message=clean(result.message) if result.message else None,
            detail=lines_of(result.message),
            failures=int(result.num_failures) if result.num_failures else None,
            relation=info.node_relation.relation_name or None,
            path=self.path_of(info.unique_id) or info.node_path or None,
            started_at=_timestamp(info.node_started_at),
            finished_at=_timestamp(info.node_finished_at),
            thread=result.thread or None,
            **warehouse_figures(result.adapter_response),
        )

    def first_error(self) -> str | None:
        """dbt's first error message in this phase, without its 'Encountered an error'."""
        for message in self.errors:
            text = message.removeprefix("Encountered an error: ").strip()
            if text:
                return text
        return None
