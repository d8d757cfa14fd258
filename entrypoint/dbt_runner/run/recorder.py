"""The phase recorder: the one writer of the report's phases and nodes.

Each phase becomes a `PhaseResult` (status, timing, dbt arguments, node counts, dbt's
own words) as it ends, its nodes `NodeResult`s with their owners; a phase that could
not run is an error of the run, an advisory phase that failed a warning (both through
the stages, their one writer), and a phase a stop cut short says why.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from dbt_runner.config import Settings
from dbt_runner.engine.attribution import owner_of
from dbt_runner.engine.session import Clock, Outcome
from dbt_runner.errors import ExitCode, dbt_error
from dbt_runner.report.model import NodeResult, PhaseResult, PhaseStatus, RunReport
from dbt_runner.run.stages import Stages

log = logging.getLogger(__name__)


class PhaseRecorder:
    """Writes phases and nodes into the report; asks `stop_reason` why a stop happened
    and `manifest` for the nodes' owners."""

    def __init__(
        self,
        report: RunReport,
        stages: Stages,
        stop_reason: Callable[[], str],
        manifest: Callable[[], Any],
    ) -> None:
        self.report = report
        self.stages = stages
        self.stop_reason = stop_reason
        self.manifest = manifest

    @property
    def nodes(self) -> list[NodeResult]:
        return self.report.nodes

    def ran(self) -> list[str]:
        """The phases that ran, in order."""
        return [phase.name for phase in self.report.phases if phase.status != "skipped"]

    def outcome(self, name: str, outcome: Outcome, advisory: bool = False) -> PhaseResult:
        message = self.stop_reason() if outcome.status == "interrupted" else outcome.message
        return self.record(
            name,
            outcome.status,
            outcome.clock,
            outcome.args,
            message,
            outcome.nodes,
            advisory,
            outcome.complete,
        )

    def skipped(self, name: str, why: str) -> PhaseResult:
        return self.record(name, "skipped", message=why)

    def record(
        self,
        name: str,
        status: PhaseStatus,
        clock: Clock | None = None,
        args: list[str] | None = None,
        message: str | None = None,
        nodes: Iterable[NodeResult] = (),
        advisory: bool = False,
        complete: bool = True,
    ) -> PhaseResult:
        """A phase of the report, with its nodes. `name`: the phase's; `status`: how it
        ended; `clock`: when it started (None: it did not); `args`: dbt's arguments;
        `message`: what it says; `nodes`: its node results; `advisory`: its failure is
        a warning; `complete`: every node's fate is known."""
        nodes = self._owned(nodes)
        counts: Counter[str] = Counter(node.outcome for node in nodes)
        phase = PhaseResult(
            name=name,
            status=status,
            advisory=advisory,
            started_at=clock.started_at if clock else None,
            duration_s=clock.elapsed() if clock else 0.0,
            dbt_args=args or [],
            counts={key: counts.get(key, 0) for key in ("ok", "warn", "failed", "skipped")},
            message=message,
            results_complete=complete,
        )
        self.report.phases.append(phase)
        self.report.nodes.extend(nodes)
        self._said(phase)
        return phase

    def _owned(self, nodes: Iterable[NodeResult]) -> list[NodeResult]:
        found = list(nodes)
        manifest = self.manifest()
        for node in found:
            node.owner = node.owner or owner_of(manifest, node.unique_id)
        return found

    def _said(self, phase: PhaseResult) -> None:
        """dbt's own words where every reader of the report (and stderr) looks first."""
        name, status, message = phase.name, phase.status, phase.message
        error = dbt_error(name, message or f"dbt {name} failed") if status == "error" else None
        if error is not None and (not phase.advisory or error.exit_code == ExitCode.INFRA):
            self.stages.error(name, error.message, error.exit_code)
        if phase.advisory and status in ("failed", "error"):
            self.stages.warn(f"{name} {status} (advisory: the job goes on): {message}")
        level = logging.INFO if status in ("success", "skipped") else logging.WARNING
        note = f" ({message})" if message else ""
        log.log(level, "phase %s: %s in %.1f s%s", name, status, phase.duration_s, note)

    def unmatched(self, phase: str, specs: list[str], settings: Settings) -> None:
        """The user's selection criteria dbt found no node for in this phase: a warning
        (dbt only logs it), or, with DBT_RUNNER_UNMATCHED_SELECTION=fail, an error."""
        given = {*(settings.select or "").split(), *(settings.exclude or "").split()}
        for spec in dict.fromkeys(specs):
            if spec not in given and not settings.selector:
                continue  # the runner's own (state:modified+ with nothing changed)
            message = f"the selection '{spec}' matches no node ({phase}): nothing was built for it"
            if message in self.report.warnings:
                continue
            self.stages.warn(message)
            if settings.unmatched_selection == "fail":
                fix = f"{message}; fix the selection (DBT_RUNNER_UNMATCHED_SELECTION=fail)"
                self.stages.error("selection", fix, ExitCode.CONFIG)
