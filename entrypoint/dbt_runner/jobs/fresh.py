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

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dbt_runner.config import interval
from dbt_runner.engine.results import status_of
from dbt_runner.jobs.base import Context, Findings
from dbt_runner.jobs.slim import Slim
from dbt_runner.report.model import FreshInfo, now
from dbt_runner.state.kept import NODES, SOURCES, read_json, results_by_id

if TYPE_CHECKING:
    from dbt_runner.state.store import Baseline

log = logging.getLogger(__name__)


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
    sources.json, as it does the sources without a freshness rule).
    `manifest`: the run's; `project`: its name (other packages' sources are not its own);
    `previous` and `current`: the last good run's sources.json and this run's."""
    changes = SourceChanges()
    before, now = results_by_id(previous), results_by_id(current)
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
    built within the interval. {unique_id: why}.
    `manifest`: the run's; `candidates`: what the build selects; `changed`: what
    state:modified+ selects (never held back); `nodes`: the state's nodes.json;
    `job_default`: DBT_RUNNER_FRESH__BUILD_AFTER; `now`: the clock."""
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


def model_seconds(nodes: dict[str, Any], skipped: list[str]) -> float:
    """The summed durations, in their last builds, of the models this run did not
    build: model-seconds (across threads), not the wall time they would have taken."""
    return round(sum(float((nodes.get(uid) or {}).get("duration_s") or 0) for uid in skipped), 1)


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


class Fresh(Slim):
    """DBT_RUNNER_JOB=fresh: freshness first, then build what has new data or changed."""

    name = "fresh"

    def node_selection(self, baseline: Baseline | None) -> list[str]:
        if baseline is None:
            return super().node_selection(None)
        changed = ["source_status:fresher+", "state:modified+"]
        return self._state_selection(baseline, changed)

    def narrowed(self) -> str | None:
        return None  # its selection is its own: what has new data or changed, and theirs

    def build_command(self, command: list[str], context: Context) -> list[str]:
        """What source_status:fresher+ and state:modified+ select, with every source dbt
        cannot judge counted as new, less the models waiting under their build_after."""
        changes = self._changes(context)
        info = self.found.fresh = FreshInfo(new_data=changes.new_data, assumed=changes.assumed)
        for source, why in changes.assumed.items():
            log.info("fresh: %s counts as new data: %s", source, why)
        if context.baseline is None:
            return command  # everything is built (report.state says why)
        extra = changes.selectors()
        command = [*command, "--select", *extra] if extra else command
        waiting = self._waiting(command, context)
        if waiting:
            manifest = context.session.manifest
            info.too_soon, info.held_back = waiting, upstream_sources(manifest, list(waiting))
            names = sorted(".".join(manifest.nodes[uid].fqn) for uid in waiting if manifest)
            command = [*command, "--exclude", *names]
        return command

    def _changes(self, context: Context) -> SourceChanges:
        current = read_json(context.session.target_path / SOURCES)
        previous = read_json(context.baseline.dir / SOURCES) if context.baseline else None
        failed = {
            node.unique_id
            for node in context.nodes
            if node.phase == "freshness" and node.status == "runtime error"
        }
        manifest = context.session.manifest
        return compare(manifest, context.project, previous, current, failed)

    def _waiting(self, command: list[str], context: Context) -> dict[str, str]:
        """Models that build_after leaves alone: selected for new data only, built lately."""
        default = self.settings.fresh.build_after
        manifest, baseline = context.session.manifest, context.baseline
        models = manifest.nodes.values() if manifest is not None else []
        declared = any((node.meta or {}).get("build_after") for node in models)
        if (not default and not declared) or baseline is None:
            return {}  # no lag tolerance anywhere: no need to ask dbt what is selected
        nodes = read_json(baseline.dir / NODES) or {}
        candidates = context.session.selected(command) or set()
        changed_command = ["build", "--select", "state:modified+", *baseline.besides()]
        changed = context.session.selected([*changed_command, "--state", str(baseline.dir)])
        return too_soon(manifest, candidates, changed or set(), nodes, default, now())

    def findings(self, context: Context) -> Findings:
        """A fresh job's counts: models built and skipped, and the model-seconds skipped."""
        info, manifest = self.found.fresh, context.session.manifest
        if info is None or manifest is None:
            return self.found
        models = {
            uid
            for uid, node in manifest.nodes.items()
            if status_of(node.resource_type) == "model" and node.package_name == context.project
        }
        built = {
            n.unique_id for n in context.nodes if n.phase == "build" and n.outcome != "skipped"
        }
        skipped = sorted(models - built)
        info.models_built, info.models_skipped = len(models & built), len(skipped)
        baseline = context.baseline
        nodes = read_json(baseline.dir / NODES) if baseline else None
        info.model_seconds_skipped = model_seconds(nodes or {}, skipped)
        return self.found
