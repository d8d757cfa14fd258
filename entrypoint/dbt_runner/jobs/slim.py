"""Slim jobs (DBT_RUNNER_JOB=slim): build what changed since the last good state and its
children (`state:modified+`), deferring every unselected parent to the relations that
state describes. Without a state it can trust, a slim job builds everything, like a
full one (state/ledger.py says why)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.kinds import BUILT_TYPES, NODE_COMMANDS
from dbt_runner.jobs.base import JobKind, state_selection, user_selection

if TYPE_CHECKING:
    from dbt_runner.report.model import NodeResult
    from dbt_runner.state.store import Baseline

# DBT_RUNNER_SLIM__SELECT criteria that take in every change and all that reads it
# (state:modified+, with or without parents); any other narrows it.
EVERY_CHANGE = re.compile(r"(\d*\+)?state:modified\+|@state:modified")


def covers_every_change(select: str) -> bool:
    """Whether a slim selection (criteria joined by spaces: a union) builds at least
    every change and what reads it."""
    return any(EVERY_CHANGE.fullmatch(criterion) for criterion in select.split())


class Slim(JobKind):
    name = "slim"

    def node_selection(self, baseline: Baseline | None) -> list[str]:
        if baseline is None:
            return user_selection(self.settings)
        return state_selection(self.settings, baseline, self.settings.slim.select.split())

    def selects_whole_project(self) -> bool:
        """Every change and what reads it: DBT_RUNNER_SELECT adds to it; a selector, an
        exclusion or a narrower DBT_RUNNER_SLIM__SELECT narrows it."""
        settings = self.settings
        return not (settings.selector or settings.exclude) and self.narrowed() is None

    def narrowed(self) -> str | None:
        select = self.settings.slim.select
        if covers_every_change(select):
            return None
        return (
            f"DBT_RUNNER_SLIM__SELECT='{select}' builds less than every change and what reads "
            "it (state:modified+)"
        )

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
