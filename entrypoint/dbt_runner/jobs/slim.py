"""Slim jobs (DBT_RUNNER_JOB=slim): build what changed since the last good state and its
children (`state:modified+`), deferring every unselected parent to the relations that
state describes. Without a state it can trust, a slim job builds everything, like a
full one (state/ledger.py says why)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.kinds import BUILT_TYPES, NODE_COMMANDS
from dbt_runner.jobs.base import (
    Context,
    JobKind,
    Performed,
    state_args,
    state_selection,
    user_selection,
)
from dbt_runner.jobs.step import Step

if TYPE_CHECKING:
    from dbt_runner.engine.invocation import DbtInvocation
    from dbt_runner.reach.step import Children
    from dbt_runner.report.model import NodeResult
    from dbt_runner.state.store import Baseline

log = logging.getLogger(__name__)

# DBT_RUNNER_SLIM__SELECT criteria that take in every change and all that reads it
# (state:modified+, with or without parents); any other narrows it.
EVERY_CHANGE = re.compile(r"(\d*\+)?state:modified\+|@state:modified")
# The criterion the children step narrows (DBT_RUNNER_SLIM__CHILDREN=affected).
ALL_CHILDREN = "state:modified+"
CHILDREN = "children"


def covers_every_change(select: str) -> bool:
    """Whether a slim selection (criteria joined by spaces: a union) builds at least
    every change and what reads it."""
    return any(EVERY_CHANGE.fullmatch(criterion) for criterion in select.split())


class Slim(JobKind):
    name = "slim"
    children: Children | None = None  # what the children step decided

    def steps(self, phases: list[Step], invocation: DbtInvocation) -> list[Step]:
        """The phases, with the children step after the parse when a node phase builds
        every descendant of the changes and the settings ask for those a change reaches."""
        narrows = any(step.node_phase and ALL_CHILDREN in step.command for step in phases)
        settings = self.settings
        if not narrows or settings.slim.children != "affected" or settings.full_refresh:
            return phases  # a full refresh rebuilds what it is asked to, reached or not
        at = next((i + 1 for i, step in enumerate(phases) if step.kind == "parse"), None)
        if at is None:
            return phases
        said = ("decide", "which", "descendants", "of", "the", "changes", "to", "build")
        step = Step(CHILDREN, "children", said, advisory=True, said_when_skipped=False)
        return [*phases[:at], step, *phases[at:]]

    def perform(self, step: Step, context: Context) -> Performed:
        """The children step: which descendants of the changes a change can reach."""
        if step.name != CHILDREN or context.baseline is None:
            return super().perform(step, context)
        from dbt_runner.reach.step import decide_children
        from dbt_runner.versions import dbt_version

        folder = context.baseline.dir
        build_state = state_args(self.settings, context.baseline)
        try:
            self.children = decide_children(context.session, folder, build_state, dbt_version())
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # never the job's failure: every descendant is built
            log.warning("children: every descendant is built (%s)", exc, exc_info=True)
            return Performed("error", f"every descendant is built: {exc}")
        info = self.found.reach = self.children.info
        self.found.children = self.children.decisions
        if info.mode == "all":
            return Performed("success", f"every descendant: {info.reason}")
        total = info.built + info.skipped
        return Performed("success", f"{info.built} of {total} descendant(s) to build")

    def node_command(self, command: list[str], context: Context) -> list[str]:
        """A node phase's command with the descendants the children step chose."""
        chosen = self.children.selection if self.children is not None else None
        if chosen is None or ALL_CHILDREN not in command:
            return command
        at = command.index(ALL_CHILDREN)
        return [*command[:at], *chosen, *command[at + 1 :]]

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
