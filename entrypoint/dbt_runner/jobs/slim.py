"""Slim jobs (DBT_RUNNER_JOB=slim): build what changed since the last good state and its
children (`state:modified+`), deferring every unselected parent to the relations that
state describes. Without a state it can trust, a slim job builds everything, like a
full one (state/ledger.py says why)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbt_runner.jobs.base import JobKind, state_selection, user_selection

if TYPE_CHECKING:
    from dbt_runner.report.model import NodeResult
    from dbt_runner.state.store import Baseline

# The commands whose nodes a slim build selected.
NODE_COMMANDS = {"seed", "snapshot", "run", "test", "build"}
BUILT_TYPES = ("model", "seed", "snapshot")


class Slim(JobKind):
    name = "slim"

    def node_selection(self, baseline: Baseline | None) -> list[str]:
        if baseline is None:
            return user_selection(self.settings)
        return state_selection(self.settings, baseline, self.settings.slim.select.split())

    def selects_whole_project(self) -> bool:
        """Every change: DBT_RUNNER_SELECT adds to it; only a selector or an exclusion
        narrows it."""
        return not (self.settings.selector or self.settings.exclude)

    def compiles_whole_project(self) -> bool:
        return False  # it compiles what changed


def slim_nodes(nodes: list[NodeResult], manifest: Any) -> dict[str, list[str]]:
    """What a slim build selected, built and skipped, and which parents it deferred."""
    results = [node for node in nodes if node.phase in NODE_COMMANDS]
    selected = sorted({node.unique_id for node in results})
    built = sorted({n.unique_id for n in results if n.outcome != "skipped"})
    skipped = sorted({n.unique_id for n in results if n.outcome == "skipped"})
    deferred: set[str] = set()
    if manifest is not None:
        chosen = set(selected)
        for unique_id in chosen:
            node = manifest.nodes.get(unique_id)
            for parent in getattr(getattr(node, "depends_on", None), "nodes", []):
                if parent not in chosen and parent.split(".", 1)[0] in BUILT_TYPES:
                    deferred.add(parent)
    return {"selected": selected, "built": built, "skipped": skipped, "deferred": sorted(deferred)}
