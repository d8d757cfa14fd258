"""The sequence: the run's steps (jobs/steps.py), in order, through one dbt session.

deps and debug run first; the project is parsed once, by the step before the first
that needs the manifest; every later step reuses it. Before the first node phase the
job is asked whether to go on (a pull request's guard), and before each step whether it
may start (a retry's checks); the build's command is the job's to adjust (a fresh
job's). A step that could not run stops every later one, a strict step that failed the
strict ones after it; an advisory step never stops anything. A stop (a signal or the
timeout) records every step it left, and leaves run results `dbt retry` can complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dbt_runner.config import Phase, Settings
from dbt_runner.engine.artifacts import keep_run_results, restore_job_run_results
from dbt_runner.engine.session import PARSE, Clock, DbtSession, Interrupted
from dbt_runner.errors import ExitCode
from dbt_runner.jobs import Context, JobKind
from dbt_runner.jobs.lint import lint_phase
from dbt_runner.jobs.step import Step
from dbt_runner.jobs.steps import NO_COMPILE, steps_for
from dbt_runner.report.model import LintInfo, PhaseResult
from dbt_runner.run.recorder import PhaseRecorder
from dbt_runner.state.store import Baseline
from dbt_runner.workspace.packages import remember_install
from dbt_runner.workspace.prepare import Workspace

log = logging.getLogger(__name__)

STOPPED = "skipped: the run was stopped"
NOT_PARSED = "skipped: the project did not parse"


class PhaseSequence:
    """Runs the job's steps through one dbt session, recording each."""

    def __init__(
        self,
        settings: Settings,
        job: JobKind,
        session: DbtSession,
        recorder: PhaseRecorder,
        workspace: Workspace,
        baseline: Baseline | None,
    ) -> None:
        """`job`: the run's kind (its steps, selection and checks); `session`: dbt;
        `recorder`: the report's phases and nodes; `workspace`: the project and profile;
        `baseline`: the state a slim or fresh job compares with."""
        self.settings, self.job, self.session = settings, job, session
        self.recorder, self.baseline = recorder, baseline
        self.project = workspace.project
        self.namespace = workspace.profile.namespace
        self.deps_not_needed = workspace.deps_not_needed()
        self.refresh_credentials = workspace.refresh_credentials
        self.steps = steps_for(settings, job, workspace.invocation(), baseline)
        # Told each node phase's command last; it may leave nodes out (Dagster's selection).
        self.narrow: Callable[[list[str]], list[str]] | None = None
        self.narrowed = False  # a node phase's command left nodes out (the narrow hook)
        self.compiled = False  # every node compiled into the manifest by an earlier step
        self.guarded = False  # the job was asked before the first node phase
        self.lint: LintInfo | None = None  # what the lint phase found

    def context(self) -> Context:
        return Context(
            self.session, self.project.name, self.baseline, self.recorder.nodes, self.namespace
        )

    def run(self) -> None:
        """Every step; raise Interrupted when a signal or the timeout stops it."""
        remaining = list(self.steps)
        self.blocked: str | None = None  # why strict steps no longer run
        self.stopped: str | None = None  # why nothing runs any more
        try:
            while remaining:
                step = remaining.pop(0)
                self._take(step)
        except KeyboardInterrupt:
            for step in remaining:
                if step.said_when_skipped:
                    self.recorder.skipped(step.name, STOPPED)
            raise
        finally:
            self.finish()

    def _take(self, step: Step) -> None:
        """Run a step, or say why not; what it did decides what runs after it."""
        why = self._why_not(step, self.blocked, self.stopped)
        if not why:
            why = self.stopped = self._guard(step)  # refused: nothing runs after it
        if why:
            if step.said_when_skipped:
                self.recorder.skipped(step.name, why)
            return
        result = self._run(step)
        if result.advisory or result.status == "success":
            return
        if step.kind == "parse":
            self.stopped = NOT_PARSED
        elif result.status == "error":
            self.stopped = f"skipped: {step.name} could not run"
        else:
            self.blocked = f"skipped: {step.name} failed"

    def finish(self) -> None:
        """The job's node run results as run_results.json; the manifest written once."""
        restore_job_run_results(self.session.target_path, self.recorder.ran())
        self.session.write_manifest()

    def _why_not(self, step: Step, blocked: str | None, stopped: str | None) -> str | None:
        """Why a step does not run, from the steps before it, or None."""
        if step.always:
            return None
        if stopped:
            return stopped
        if blocked and not step.advisory and step.kind != "parse":
            return blocked
        return self.deps_not_needed if step.phase is Phase.DEPS else None

    def _guard(self, step: Step) -> str | None:
        """The job's word before the first node phase; why not (nothing runs after)."""
        if not step.node_phase or self.guarded:
            return None
        self.guarded = True
        refused = self.job.before_nodes(self.context(), self._selected)
        if refused is None:
            return None
        self.recorder.stages.error("pr-guard", refused, ExitCode.CONFIG)
        return "skipped: a node would write outside the pull request's schemas"

    def _selected(self) -> set[str]:
        """Every node the job's node phases select."""
        selected: set[str] = set()
        for step in (s for s in self.steps if s.node_phase and s.kind == "dbt"):
            selected |= self.session.selected(list(step.command)) or set()
        return selected

    def _run(self, step: Step) -> PhaseResult:
        if step.kind == "parse":
            return self._parse()
        if step.kind == "lint":
            return self._lint(step)
        if step.kind in ("impact", "children"):
            return self._perform(step)
        self.job.before_step(step, self.context())
        self.refresh_credentials()
        command = self._command(step)
        try:
            result = self.dbt(step.name, command, step.advisory, step.has_nodes, list(step.common))
        finally:
            if step.node_phase or step.phase is Phase.DOCS:
                keep_run_results(self.session.target_path, step.name)
        if step.phase is Phase.BUILD and result.status == "success":
            self.compiled = self.job.compiles_whole_project() and not self.narrowed
        if step.phase is Phase.DEPS and result.status == "success":
            remember_install(self.project.dir)
        return result

    def _command(self, step: Step) -> list[str]:
        """A dbt step's command as it starts: what only the run knows, applied."""
        command = list(step.command)
        if step.node_phase:
            command = self.job.node_command(command, self.context())
        if step.phase is Phase.BUILD:
            command = self.job.build_command(command, self.context())
        if step.node_phase and self.narrow is not None:
            narrowed = self.narrow(command)
            self.narrowed = self.narrowed or narrowed != command
            command = narrowed
        if step.phase is Phase.DOCS:
            self.session.write_manifest()  # docs read it (a writer may have failed)
            if NO_COMPILE in command and not self.compiled:  # the build did not compile all
                command.remove(NO_COMPILE)
        return command

    def _parse(self) -> PhaseResult:
        outcome = self.session.parse()
        result = self.recorder.outcome(PARSE, outcome)
        if outcome.status == "interrupted":
            raise Interrupted(PARSE)
        return result

    def parse(self) -> bool:
        """The parse on its own (what `dbt-runner prepare` asks for)."""
        return self._parse().status == "success"

    def dbt(
        self,
        name: str,
        command: list[str],
        advisory: bool = False,
        has_nodes: bool = False,
        common: list[str] | None = None,
    ) -> PhaseResult:
        """One dbt command as a phase of the report; raise Interrupted when stopped.
        `name`: the phase's; `command`: dbt's command and its own arguments; `advisory`:
        its failure is a warning; `has_nodes`: dbt reports node results; `common`: the
        shared arguments (the session's when None)."""
        shown = [*command, *(self.session.common() if common is None else common)]
        log.info("phase %s: dbt %s", name, " ".join(shown))
        outcome = self.session.execute(name, command, has_nodes, common)
        result = self.recorder.outcome(name, outcome, advisory)
        if outcome.status == "interrupted":
            raise Interrupted(name)
        self.recorder.unmatched(name, outcome.unmatched, self.settings)
        return result

    def _lint(self, step: Step) -> PhaseResult:
        clock = Clock()
        log.info("phase lint: %s", " ".join(step.command))
        scratch = self.settings.run_dir / "lint"
        status, said, self.lint = lint_phase(self.session, self.project, self.baseline, scratch)
        command, advisory = list(step.command), step.advisory
        return self.recorder.record("lint", status, clock, command, said, (), advisory)

    def _perform(self, step: Step) -> PhaseResult:
        """A step of the job's own that is not a dbt command (a pull request's impact)."""
        clock = Clock()
        try:
            done = self.job.perform(step, self.context())
        except KeyboardInterrupt:
            self.recorder.record(step.name, "interrupted", clock, advisory=True)
            raise
        timed = clock if done.status != "skipped" else None
        return self.recorder.record(
            step.name, done.status, timed, message=done.message, advisory=done.advisory
        )
