"""A step of a run: one thing it does, in order (jobs/steps.py makes the list)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dbt_runner.config import Phase

StepKind = Literal["dbt", "parse", "lint", "impact", "children"]


@dataclass(frozen=True)
class Step:
    """One thing a run does, in order."""

    name: str  # as the report names its phase
    kind: StepKind
    command: tuple[str, ...]  # dbt's command and its own arguments (lint: what it lints)
    common: tuple[str, ...] = ()  # the arguments every dbt command shares
    phase: Phase | None = None  # the job phase it is, if it is one
    advisory: bool = False  # its failure is a warning, never the job's
    node_phase: bool = False  # its run results are the job's own (a retry's to read)
    has_nodes: bool = False  # dbt reports node results for it
    always: bool = False  # runs whatever the steps before it did (but a stop)
    said_when_skipped: bool = True  # the report lists it when it does not run

    @property
    def argv(self) -> list[str]:
        """What dbt receives (lint and impact: what they do, in words)."""
        return [*self.command, *self.common]
