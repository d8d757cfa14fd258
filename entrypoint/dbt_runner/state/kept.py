"""What a state keeps beside its manifest: each node's last build (nodes.json), and the
source freshness a fresh job took before its build (sources.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SOURCES = "sources.json"
NODES = "nodes.json"  # {unique_id: {built_at, duration_s}}


def results_by_id(document: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["unique_id"]: r for r in (document or {}).get("results", [])}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def merged_nodes(previous: dict[str, Any] | None, report: Any) -> dict[str, Any]:
    """The state's nodes.json after this run: each node's last build and its duration."""
    nodes = dict(previous or {})
    for result in report.nodes:
        if result.outcome in ("ok", "warn") and result.resource_type in (
            "model",
            "seed",
            "snapshot",
        ):
            finished = result.finished_at or datetime.now(UTC)
            nodes[result.unique_id] = {
                "built_at": finished.isoformat(),
                "duration_s": result.execution_time_s,
            }
    return nodes


def promoted_sources(
    current: dict[str, Any] | None, previous: dict[str, Any] | None, held_back: list[str]
) -> bytes | None:
    """The sources.json a fresh run keeps: its own, except for the sources whose models
    waited under build_after, which keep the last state's entry so that the next run
    still sees their data as new."""
    if current is None:
        return None
    earlier = results_by_id(previous)
    results = []
    for result in current.get("results", []):
        unique_id = result["unique_id"]
        if unique_id not in held_back:
            results.append(result)
        elif unique_id in earlier:
            results.append(earlier[unique_id])
    return json.dumps({**current, "results": results}).encode()
