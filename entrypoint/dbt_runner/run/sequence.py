"""The phase sequence: a job's phases in the data path's order, with one parse.

deps and debug run first; the project is parsed once, when the first phase that needs
the manifest comes; every later phase reuses it. Before the first node phase the job is
asked whether to go on (a pull request's guard); the build's command is the job's to
adjust (a fresh job's). A phase that could not run stops every later one, a strict
phase that failed the strict ones after it; an advisory phase never stops anything. A
stop (a signal or the timeout) records every phase it left, and leaves run results
`dbt retry` can complete.
"""

from __future__ import annotations

import logging

from dbt_runner.config import Phase, Settings
from dbt_runner.engine.artifacts import keep_run_results, restore_job_run_results
from dbt_runner.engine.session import NO_WRITE, PARSE, Clock, DbtSession, Interrupted
from dbt_runner.errors import ExitCode
from dbt_runner.jobs import Context, JobKind
from dbt_runner.jobs.lint import lint_phase
from dbt_runner.report.model import LintInfo, PhaseResult
from dbt_runner.run.commands import (
    NEEDS_MANIFEST,
    NODE_PHASES,
    phase_command,
    skips_manifest,
    writes_manifest,
)
from dbt_runner.run.recorder import PhaseRecorder
from dbt_runner.state.store import Baseline
from dbt_runner.workspace.packages import remember_install
from dbt_runner.workspace.prepare import Workspace

log = logging.getLogger(__name__)

STOPPED = "skipped: the run was stopped"


class PhaseSequence:
    """Runs the job's phases through one dbt session, recording each."""

    def __init__(
        self,
        settings: Settings,
        job: JobKind,
        session: DbtSession,
        recorder: PhaseRecorder,
        workspace: Workspace,
        baseline: Baseline | None,
    ) -> None:
        self.settings, self.job, self.session = settings, job, session
        self.recorder, self.baseline = recorder, baseline
        self.project = workspace.project
        self.namespace = workspace.profile.namespace
        self.deps_not_needed = workspace.deps_not_needed()
        self.phases = settings.job_phases
        self.compiled = False  # every node compiled into the manifest by an earlier phase
        self.guarded = False  # the job was asked before the first node phase
        self.lint: LintInfo | None = None  # what the lint phase found

    def context(self) -> Context:
        return Context(
            self.session, self.project.name, self.baseline, self.recorder.nodes, self.namespace
        )

    def run(self) -> None:
        """Every phase; raise Interrupted when a signal or the timeout stops it."""
        remaining = list(self.phases)
        blocked: str | None = None  # why strict phases no longer run
        stopped: str | None = None  # why nothing runs any more
        try:
            while remaining:
                phase = remaining.pop(0)
                advisory = phase in self.settings.advisory_phases
                why = stopped or (blocked if not advisory else None) or self._skip(phase)
                if not why:
                    why = stopped = self._ready(phase)  # a phase not ready stops the rest
                if why:
                    self.recorder.skipped(phase.value, why)
                    continue
                result = self._run(phase, advisory)
                if advisory or result.status == "success":
                    continue
                if result.status == "error":
                    stopped = f"skipped: {phase.value} could not run"
                else:
                    blocked = f"skipped: {phase.value} failed"
        except KeyboardInterrupt:
            for phase in remaining:
                self.recorder.skipped(phase.value, STOPPED)
            raise
        finally:
            self.finish()

    def finish(self) -> None:
        """The job's node run results as run_results.json; the manifest written once."""
        restore_job_run_results(self.session.target_path, self.recorder.ran())
        self.session.write_manifest()

    def _skip(self, phase: Phase) -> str | None:
        return self.deps_not_needed if phase is Phase.DEPS else None

    def _ready(self, phase: Phase) -> str | None:
        """What a phase needs first: the parse, and the job's word before node phases.
        Why it cannot run (then nothing after it runs), or None."""
        if phase in NEEDS_MANIFEST and self.session.manifest is None and not self.parse():
            return "skipped: the project did not parse"
        if phase in NODE_PHASES and not self.guarded:
            self.guarded = True
            refused = self.job.before_nodes(self.context(), self._selected)
            if refused is not None:
                self.recorder.stages.error("pr-guard", refused, ExitCode.CONFIG)
                return "skipped: a node would write outside the pull request's schemas"
        return None

    def _selected(self) -> set[str]:
        """Every node the job's node phases select."""
        selected: set[str] = set()
        for phase in (p for p in self.phases if p in NODE_PHASES):
            selected |= self.session.selected(self._command(phase)) or set()
        return selected

    def parse(self) -> bool:
        outcome = self.session.parse()
        self.recorder.outcome(PARSE, outcome)
        if outcome.status == "interrupted":
            raise Interrupted(PARSE)
        return outcome.status == "success"

    def _command(self, phase: Phase) -> list[str]:
        return phase_command(
            phase, self.settings, self.phases, self.compiled, self.baseline, self.job
        )

    def _run(self, phase: Phase, advisory: bool) -> PhaseResult:
        command = self._command(phase)
        if phase is Phase.BUILD:
            command = self.job.build_command(command, self.context())
        if phase is Phase.DOCS:
            self.session.write_manifest()  # docs read it (a writer may have failed)
        if phase is Phase.LINT:
            return self._lint(command, advisory)
        result = self._dbt_phase(phase, command, advisory)
        if phase is Phase.BUILD and result.status == "success":
            self.compiled = self.job.compiles_whole_project()
        if phase is Phase.DEPS and result.status == "success":
            remember_install(self.project.dir)
        return result

    def _dbt_phase(self, phase: Phase, command: list[str], advisory: bool) -> PhaseResult:
        has_nodes = phase in NODE_PHASES or phase is Phase.FRESHNESS
        skip = skips_manifest(phase, self.phases)
        try:
            result = self.dbt(
                phase.value, [*command, NO_WRITE] if skip else command, advisory, has_nodes
            )
            if writes_manifest(phase, self.phases):
                self.session.manifest_written = True
            return result
        finally:
            if phase in NODE_PHASES or phase is Phase.DOCS:
                keep_run_results(self.session.target_path, phase.value)

    def dbt(
        self,
        name: str,
        command: list[str],
        advisory: bool = False,
        has_nodes: bool = False,
        common: list[str] | None = None,
    ) -> PhaseResult:
        """One dbt command as a phase of the report; raise Interrupted when stopped."""
        shown = [*command, *(self.session.common() if common is None else common)]
        log.info("phase %s: dbt %s", name, " ".join(shown))
        outcome = self.session.execute(name, command, has_nodes, common)
        result = self.recorder.outcome(name, outcome, advisory)
        if outcome.status == "interrupted":
            raise Interrupted(name)
        self.recorder.unmatched(name, self.session.recorder.unmatched, self.settings)
        return result

    def _lint(self, command: list[str], advisory: bool) -> PhaseResult:
        clock = Clock()
        log.info("phase lint: %s", " ".join(command))
        scratch = self.settings.run_dir / "lint"
        status, said, self.lint = lint_phase(self.session, self.project, self.baseline, scratch)
        return self.recorder.record("lint", status, clock, command, said, (), advisory)
