"""Source-aware builds (DBT_RUNNER_JOB=fresh): build what has new data or changed code.

The job runs `source freshness` first, then builds `source_status:fresher+` together
with `state:modified+`, deferring everything else to the last good state. Never wrong,
only cautious: a source dbt cannot judge (no loaded_at field or query, a freshness
query that failed, absent from the previous sources.json) counts as new data and its
whole subtree is built; a first run, a missing or foreign previous sources.json, or a
dbt version change builds everything. The report says why, for each.

An optional lag tolerance (`build_after`: the job's DBT_RUNNER_FRESH__BUILD_AFTER or
a model's `meta.build_after`, "4h", "30m", "1d") skips a model whose only reason to
build is new data when it was built within that interval (the state's nodes.json).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SOURCES = "sources.json"
NODES = "nodes.json"  # kept with the state: {unique_id: {built_at, duration_s}}
_INTERVAL = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def interval(text: str) -> timedelta:
    """`4h`, `30m`, `1d` as a timedelta; ValueError otherwise."""
    match = _INTERVAL.match(text.strip().lower())
    if not match:
        raise ValueError(f"'{text}' is not an interval like 30m, 4h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _results(document: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["unique_id"]: r for r in (document or {}).get("results", [])}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class SourceChanges:
    """What the freshness results say about each source, against the last good run's."""

    new_data: list[str] = field(default_factory=list)  # newer max_loaded_at
    assumed: dict[str, str] = field(default_factory=dict)  # source -> why assumed new

    def selectors(self) -> list[str]:
        """dbt selectors for the sources assumed new (source_status cannot see them)."""
        return [f"source:{uid.split('.', 2)[2]}+" for uid in sorted(self.assumed)]


def compare(
    manifest: Any,
    project: str,
    previous: dict[str, Any] | None,
    current: dict[str, Any] | None,
    failed: set[str],
) -> SourceChanges:
    """Each of the project's sources: new data, assumed new (and why), or unchanged.
    `failed`: the sources whose freshness query failed (dbt leaves them out of
    sources.json, as it does the sources without a freshness rule)."""
    changes = SourceChanges()
    before, now = _results(previous), _results(current)
    for unique_id, source in sorted(manifest.sources.items()):
        if source.package_name != project:
            continue
        result = now.get(unique_id)
        if unique_id in failed or (result is not None and not result.get("max_loaded_at")):
            changes.assumed[unique_id] = "its freshness query failed"
        elif result is None:
            changes.assumed[unique_id] = "no freshness rule (loaded_at_field or loaded_at_query)"
        elif unique_id not in before or not before[unique_id].get("max_loaded_at"):
            changes.assumed[unique_id] = "not in the last good run's sources.json"
        elif result["max_loaded_at"] > before[unique_id]["max_loaded_at"]:
            changes.new_data.append(unique_id)
    return changes


def too_soon(
    manifest: Any,
    candidates: set[str],
    changed: set[str],
    nodes: dict[str, Any],
    job_default: str | None,
    now: datetime,
) -> dict[str, str]:
    """Models to leave out under their build_after: selected only for new data, and
    built within the interval. {unique_id: why}."""
    skipped = {}
    for unique_id in sorted(candidates - changed):
        node = manifest.nodes.get(unique_id)
        if node is None or str(getattr(node.resource_type, "value", node.resource_type)) != "model":
            continue
        declared = (node.meta or {}).get("build_after") or job_default
        built = (nodes.get(unique_id) or {}).get("built_at")
        if not declared or not built:
            continue
        age = now - datetime.fromisoformat(built)
        if age < interval(str(declared)):
            skipped[unique_id] = (
                f"built {int(age.total_seconds() // 60)} min ago; build_after {declared}"
            )
    return skipped


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


def model_seconds(nodes: dict[str, Any], skipped: list[str]) -> float:
    """The summed durations, in their last builds, of the models this run did not
    build: model-seconds (across threads), not the wall time they would have taken."""
    return round(sum(float((nodes.get(uid) or {}).get("duration_s") or 0) for uid in skipped), 1)


def promoted_sources(
    current: dict[str, Any] | None, previous: dict[str, Any] | None, held_back: list[str]
) -> bytes | None:
    """The sources.json a fresh run keeps: its own, except for the sources whose models
    waited under build_after, which keep the last state's entry so that the next run
    still sees their data as new."""
    if current is None:
        return None
    earlier = _results(previous)
    results = []
    for result in current.get("results", []):
        unique_id = result["unique_id"]
        if unique_id not in held_back:
            results.append(result)
        elif unique_id in earlier:
            results.append(earlier[unique_id])
    return json.dumps({**current, "results": results}).encode()


def upstream_sources(manifest: Any, unique_ids: list[str]) -> list[str]:
    """The sources the given nodes read, directly or through other nodes."""
    found: set[str] = set()
    pending = list(unique_ids)
    seen: set[str] = set()
    while pending:
        unique_id = pending.pop()
        if unique_id in seen:
            continue
        seen.add(unique_id)
        for parent in manifest.parent_map.get(unique_id, []):
            (found.add if parent.startswith("source.") else pending.append)(parent)
    return sorted(found)
