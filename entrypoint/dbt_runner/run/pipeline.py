"""The `run` verb: the data path from validated settings to an exit code.

    preflight (lease) -> startup -> workspace (project, credentials, profile) -> target
      -> state -> phases -> state promotion -> publish -> history -> lineage
      -> report files -> notify -> metrics -> exit code

Each stage runs inside `Stages.stage`, so whatever breaks, and wherever, is one line
in the log and one error in the report, and the run still publishes, reports and
notifies (run/finish.py); the exit code says what broke (docs/faults.md). A signal or
the run timeout stops dbt the same way (guard.py). The job kind (jobs/) is asked at
fixed points; a retry is a job kind too. Every stage returns what it found and the run
puts it in the report: the stages write errors and warnings, the phase recorder phases
and nodes, and this module and finish.py the rest.
"""

from __future__ import annotations

import logging
from typing import Any

from dbt_runner.config import Settings
from dbt_runner.engine.session import DbtSession
from dbt_runner.engine.startup import import_dbt
from dbt_runner.jobs import JobKind, kind_of
from dbt_runner.jobs.base import Promotion
from dbt_runner.jobs.slim import slim_nodes
from dbt_runner.outputs import pipes
from dbt_runner.outputs.pipes import PipesReporter
from dbt_runner.outputs.publish import mark_started
from dbt_runner.process import started_at
from dbt_runner.report.model import PreparedInfo, PullRequestInfo, RunReport
from dbt_runner.report.parts import Inputs
from dbt_runner.run.finish import Finish
from dbt_runner.run.guard import Guard
from dbt_runner.run.outcome import RunOutcome, Stop
from dbt_runner.run.preflight import ArtifactsUnwritable, lease_for, run_preflight
from dbt_runner.run.recorder import PhaseRecorder
from dbt_runner.run.sequence import PhaseSequence
from dbt_runner.run.stages import StageFailed, Stages
from dbt_runner.state import ledger
from dbt_runner.state.lease import Holder, Lease, busy_message
from dbt_runner.state.promotion import Claim, begin_building
from dbt_runner.state.seeds import UnhashedSeed, unhashed_seeds
from dbt_runner.state.store import Baseline
from dbt_runner.storage import open_storages
from dbt_runner.versions import dbt_version, runner_version
from dbt_runner.workspace.inputs import env_var_names
from dbt_runner.workspace.prepare import Workspace, open_workspace
from dbt_runner.workspace.project import describe_project, repository_prefix

log = logging.getLogger(__name__)


class Run:
    """One run of a job: prepare, run dbt's phases, finish whatever happened."""

    def __init__(self, settings: Settings, job: JobKind | None = None) -> None:
        self.settings = settings
        self.job = job or kind_of(settings)
        self.pipes: PipesReporter | None = None  # Dagster's run, told of each node
        self.report = RunReport(
            started_at=started_at(),  # the process's start: its imports are the run's too
            runner_version=runner_version(),
            dbt_version=dbt_version(),
            env=settings.env,
            job=self.job.name,
            run_id=settings.run_id,
            builds_whole_project=self.job.promotion().allowed,
        )
        self.stages = Stages(self.report)
        self.guard = Guard(settings.timeout_s)
        # Opened once, handed to every step that reads or writes them (no I/O yet).
        self.storages = open_storages(settings.artifacts_url, settings.state_url, settings.aws)
        self.workspace: Workspace | None = None
        self.baseline: Baseline | None = None
        self.lease: Lease | None = None
        self.claim: Claim | None = None  # this run's write in its target's log, until closed
        self.session: DbtSession | None = None  # dbt, once the run reached it
        self.written: list[str] = []  # the relations it built (or began to): unique ids
        self.completes: list[str] = []  # a retry: the runs it completes
        self.inputs_unknown = False  # a retry of a run that recorded none
        self.unhashed_seeds: dict[str, UnhashedSeed] = {}  # seeds dbt records by path
        self.publishable = True  # False when the artifacts storage refused a write
        self.marked = False  # this run's start is in last_run.json: its end goes there too

    def execute(self) -> int:
        with self.guard.installed():
            try:
                self._prepare()
                self._run_dbt()
            except StageFailed:
                pass
            except KeyboardInterrupt:
                log.warning("run stopped during %s: %s", self.stages.current, self.guard.reason)
            self.guard.disarm()  # from here on, finish whatever happens
            try:
                finish = Finish(self.outcome(), self.report, self.stages, self.release_lease)
                finish.everything(self.guard.stopped())
            finally:
                self.job.clean_up()
                self.release_lease()  # finishing gave it back already, unless it broke
                if self.pipes is not None:
                    self.pipes.finish(self.report)
        return self.report.exit_code

    def outcome(self) -> RunOutcome:
        """What this run built and found, for finishing."""
        stop = Stop(self.guard.exit_code, self.guard.notify_budget)
        return RunOutcome(
            settings=self.settings,
            promotion=promotion_of(self.job, self.pipes, self.report),
            workspace=self.workspace,
            session=self.session,
            written=tuple(self.written),
            unhashed_seeds=dict(self.unhashed_seeds),
            claim=self.claim,
            publishable=self.publishable,
            marked=self.marked,
            lease_lost=self.lease is not None and self.lease.lost,
            stop=stop,
            storages=self.storages,
        )

    def release_lease(self) -> None:
        """The env is free for the next run: called once this run's writes that a later
        run reads (state, artifacts, reports) are over."""
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    # --- before dbt ----------------------------------------------------------------

    def _prepare(self) -> None:
        self._preflight()
        with self.stages.stage("startup"):
            import_dbt()  # timed on its own, not charged to the first phase
        workspace = self.workspace = open_workspace(self.settings, self.stages.stage)
        self.report.adapter = workspace.profile.adapter
        namespace = workspace.profile.namespace
        if namespace is not None:
            self.report.pr = PullRequestInfo(pr=namespace.pr, namespace=namespace.root)
        for source in workspace.credentials.sources:
            log.info("credentials: %s", source)
        self.report.credentials = workspace.credentials.sources
        with self.stages.stage("target"):
            target = self.report.target = workspace.identify_target()
            log.info("target: %s", target.describe() if target else "not identified")
            warning = ledger.vanishing(target, self.settings)
            if warning is not None:
                self.stages.warn(warning)
        with self.stages.stage("state"):
            self._prepare_state(workspace)
            self.report.prepared = use_baked(workspace)

    def _preflight(self) -> None:
        """Checks before dbt starts, then the env's lease (or the run that holds it)."""
        with self.stages.stage("preflight"):
            project = describe_project(self.settings.project_dir)
            self.report.project = project.name
            self.report.path_prefix = repository_prefix(project.source_dir)
            try:
                may_promote = self.report.builds_whole_project
                run_preflight(self.settings, project, may_promote, self.storages)
            except ArtifactsUnwritable:
                self.publishable = False  # said once; the report stays local
                raise
            self.job.before_lease(project.name)
            taken = lease_for(self.settings, project, self.report.job, self.storages)
        if isinstance(taken, Holder):  # another run holds the env: DBT_RUNNER_CONCURRENCY=skip
            self.report.skipped = f"skipped: {busy_message(self.settings, project.name, taken)}"
            log.warning("%s", self.report.skipped)
            raise StageFailed("preflight")
        self.lease = taken

    def _prepare_state(self, workspace: Workspace) -> None:
        """The state the job compares with and defers to; the parse cache."""
        prepared = self.job.prepare(workspace, self.report.target, self.report.dbt_version)
        self.baseline, self.report.state = prepared.baseline, prepared.state
        self.completes = prepared.completes
        if prepared.retry_of is not None:
            self.report.retry_of = prepared.retry_of
        if prepared.builds_whole_project is not None:
            self.report.builds_whole_project = prepared.builds_whole_project
        self.inputs_unknown = prepared.inputs_unknown

    # --- dbt -----------------------------------------------------------------------

    def _run_dbt(self) -> None:
        workspace = self.workspace
        assert workspace is not None  # noqa: S101 (set by _prepare)
        if not self.job.has_work():
            return
        self._mark_start(workspace)
        session = self.session = DbtSession(
            workspace.invocation(),
            workspace.target_path,
            workspace.profile.adapter,
            interrupt=self.guard.interrupt,
        )
        recorder = PhaseRecorder(
            self.report, self.stages, lambda: self.guard.reason, lambda: session.manifest
        )
        sequence = PhaseSequence(
            self.settings, self.job, session, recorder, workspace, self.baseline
        )
        if self.pipes is not None:
            self.pipes.attach(session, sequence)
        phases = ", ".join(phase.value for phase in self.settings.job_phases)
        log.info(
            "run %s: project %s, env %s, job %s (%s)",
            self.settings.run_id,
            self.report.project,
            self.settings.env,
            self.report.job,
            phases,
        )
        try:
            with self.stages.stage("dbt"), workspace.dbt_context():
                sequence.run()
        finally:
            self._found(sequence)

    def _mark_start(self, workspace: Workspace) -> None:
        """Before dbt starts: the start mark a retry looks for, and the claim on the
        target that a run killed outright leaves behind."""
        if self.publishable:
            with self.stages.stage("publish"):
                mark_started(self.storages.artifacts, workspace.project.name, self.report)
                self.marked = True
        with self.stages.stage("state"):
            name, target = workspace.project.name, self.report.target
            job, completes = self.report.job, self.completes
            state = self.storages.state
            self.claim = begin_building(self.settings, name, target, job, completes, state)

    def _found(self, sequence: PhaseSequence) -> None:
        """What the phases found, into the report."""
        findings = self.job.findings(sequence.context())
        self.report.fresh = findings.fresh
        self.report.lint = sequence.lint
        if self.report.pr is not None and findings.pr_schemas is not None:
            self.report.pr.schemas = findings.pr_schemas
        self.report.impact = findings.impact
        self.written = sequence.session.written(self.report.nodes)
        self.report.inputs, self.unhashed_seeds = what_the_parse_read(
            self, sequence.session.manifest
        )
        baked_parse_refused(self.report.prepared, sequence.session.full_parse)
        if self.baseline is not None and self.report.state is not None:
            nodes: dict[str, Any] = slim_nodes(self.report.nodes, sequence.session.manifest)
            if findings.reach is not None:
                nodes |= {"reach": findings.reach, "children": findings.children}
            self.report.state = self.report.state.model_copy(update=nodes)


def what_the_parse_read(run: Run, manifest: Any) -> tuple[Inputs | None, dict[str, UnhashedSeed]]:
    """Besides the files: the vars and environment variables (the report's inputs,
    which a promotion records and a retry compares with) and, when the job keeps
    state, the seeds dbt records by path (hashed only then)."""
    workspace = run.workspace
    if manifest is None or workspace is None:
        return run.report.inputs, {}
    inputs = run.report.inputs
    if not run.inputs_unknown:
        inputs = workspace.inputs(env_var_names(workspace.project.source_dir, manifest.env_vars))
    seeds = {}
    if run.settings.state_url is not None:
        seeds = unhashed_seeds(manifest, workspace.project.dir)
    return inputs, seeds


def baked_parse_refused(prepared: PreparedInfo | None, refused: str | None) -> None:
    """A baked parse dbt did not use after all (`refused`: why it parsed in full)."""
    if prepared is not None and prepared.parse and refused is not None:
        prepared.parse, prepared.reason = False, f"dbt parsed in full: {refused}"
        log.warning("the baked parse is not used: %s", prepared.reason)


def use_baked(workspace: Workspace) -> PreparedInfo | None:
    """What `dbt-runner prepare` baked: its parse cache where dbt reads it (over the
    state's), its packages instead of `dbt deps`; or why not, said."""
    baked = workspace.baked
    if baked is None:
        return None
    restored = baked.restore(workspace.target_path)
    if restored:
        log.info("parse cache baked by dbt-runner prepare (%s)", baked.folder)
    else:
        log.warning("the baked parse is not used: %s; dbt parses without it", baked.problem)
    return PreparedInfo(
        folder=str(baked.folder),
        prepared_at=baked.record.prepared_at if baked.record else None,
        parse=restored,
        packages=baked.packages,
        reason=baked.problem,
    )


def run(settings: Settings, job: JobKind | None = None) -> int:
    kind = job or kind_of(settings)
    with pipes.opened(settings.run_id, kind.name) as reporter:
        job_run = Run(settings, kind)
        job_run.pipes = reporter
        return job_run.execute()


def promotion_of(job: JobKind, dagster: PipesReporter | None, report: RunReport) -> Promotion:
    """Whether the run may become the state: the `job`'s answer, unless `dagster`'s
    selection left out assets the job selects (then `report` says it built a part)."""
    promotion = job.promotion()
    left_out = dagster.left_out if dagster is not None else []
    if not promotion.allowed or not left_out:
        return promotion
    report.builds_whole_project = False
    return Promotion(f"Dagster asked for part of the job's assets ({len(left_out)} left out)")
