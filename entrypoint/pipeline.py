"""The `run` verb: the data path from validated settings to an exit code.

    preflight -> workspace (project, credentials, profile) -> state -> phases
      -> state promotion -> publish -> history -> lineage -> report files -> notify
      -> exit code

Each stage runs inside `Stages.stage`, so whatever breaks, and wherever, is one line
in the log and one error in the report, and the run still publishes, reports and
notifies; the exit code says what broke (README, "Exit codes"). A signal or the run
timeout stops dbt the same way (see guard.py). `retry.py` reuses this path with its
own preparation and dbt step.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from entrypoint import history, ledger, metrics, notify
from entrypoint.errors import InfraError, RunnerError
from entrypoint.guard import Guard
from entrypoint.lease import Holder, Lease, busy_message
from entrypoint.phases import PhaseRunner
from entrypoint.preflight import ArtifactsUnwritable, lease_for, run_preflight
from entrypoint.project import describe_project
from entrypoint.publish import mark_started, publish_artifacts, publish_reports
from entrypoint.report import PullRequestInfo, RunReport
from entrypoint.report_files import append_step_summary, write_report_files
from entrypoint.settings import Settings
from entrypoint.stages import StageFailed, Stages
from entrypoint.startup import import_dbt
from entrypoint.state import (
    Baseline,
    Claim,
    begin_building,
    end_building,
    fetch_state,
    look_up_state,
    promote_state,
)
from entrypoint.storage import Storage, open_storage
from entrypoint.versions import dbt_version, runner_version
from entrypoint.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)


class Run:
    """One `dbt-runner run`: prepare, run dbt's phases, finish whatever happened."""

    job_name: str | None = None  # the report's job, when not the settings' own

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.report = RunReport(
            runner_version=runner_version(),
            dbt_version=dbt_version(),
            env=settings.env,
            job=self.job_name or settings.job.value,
            run_id=settings.run_id,
            builds_whole_project=settings.not_promotable() is None,
        )
        self.stages = Stages(self.report)
        self.guard = Guard(settings.timeout_s)
        self.workspace: Workspace | None = None
        self.baseline: Baseline | None = None
        self.claim: Claim | None = None  # this run's mark on its target, until settled
        self.built: list[str] = []  # the relations it built, as dbt selectors
        self.keep_run_dir = False
        self.publishable = True
        self.marked = False  # this run's start is in last_run.json: its end goes there too
        self.lease: Lease | None = None

    # --- the data path ---------------------------------------------------------

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
                self._finish()
            finally:
                if self.lease is not None:
                    self.lease.release()  # last: the env is this run's until it has said all
        return self.report.exit_code

    def _prepare(self) -> None:
        stage = self.stages.stage
        with stage("preflight"):
            project = describe_project(self.settings.project_dir)
            self.report.project = project.name
            try:
                run_preflight(self.settings, project, self.report.builds_whole_project)
            except ArtifactsUnwritable:
                self.publishable = False  # said once; the report stays local
                raise
            self._before_lease(project.name)
            taken = lease_for(self.settings, project, self.report.job)
        if isinstance(taken, Holder):  # another run holds the env: DBT_RUNNER_CONCURRENCY=skip
            self.report.skipped = f"skipped: {busy_message(self.settings, project.name, taken)}"
            log.warning("%s", self.report.skipped)
            raise StageFailed("preflight")
        self.lease = taken
        with stage("startup"):
            import_dbt()  # timed on its own, not charged to the first phase
        self.workspace = open_workspace(self.settings, stage)
        self.report.adapter = self.workspace.profile.adapter
        namespace = self.workspace.profile.namespace
        if namespace is not None:
            self.report.pr = PullRequestInfo(pr=namespace.pr, namespace=namespace.root)
        for source in self.workspace.credentials.sources:
            log.info("credentials: %s", source)
        self.report.credentials = self.workspace.credentials.sources
        with stage("target"):
            target = self.report.target = self.workspace.identify_target()
            log.info("target: %s", target.describe() if target else "not identified")
            warning = ledger.vanishing(target, self.settings)
            if warning is not None:
                log.warning("%s", warning)
                self.report.warnings.append(warning)
        with stage("state"):
            self._prepare_state(self.workspace)

    def _prepare_state(self, workspace: Workspace) -> None:
        """A slim job's state to compare with and defer to; the parse cache."""
        project = workspace.project
        found = look_up_state(
            self.settings, project.name, self.report.target, self.report.dbt_version
        )
        self.baseline = fetch_state(
            self.settings, found, project.dir, workspace.target_path, self.report
        )

    def _before_lease(self, project: str) -> None:
        """A check of the verb's own before the env's lease is taken (retry's)."""

    def _has_work(self) -> bool:
        """Whether dbt has anything to run (a retry of a run that succeeded has not)."""
        return True

    def _run_dbt(self) -> None:
        assert self.workspace is not None  # noqa: S101 (set by _prepare)
        if not self._has_work():
            return
        if self.publishable:
            with self.stages.stage("publish"):
                storage = open_storage(self.settings.artifacts_url, self.settings.aws)
                mark_started(storage, self.workspace.project.name, self.report)
                self.marked = True
        with self.stages.stage("state"):
            name, target = self.workspace.project.name, self.report.target
            self.claim = begin_building(self.settings, name, target, self.report.run_id)
        runner = PhaseRunner(self.settings, self.workspace, self.report, self.baseline)
        runner.stop_reason = lambda: self.guard.reason
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
            with self.stages.stage("dbt"), self.workspace.dbt_context():
                self._execute(runner)
        finally:
            runner.fresh_summary()
            self.built = runner.built_selectors()
            if self.baseline is not None and self.report.state is not None:
                self.report.state = self.report.state.model_copy(update=runner.slim_nodes())

    def _execute(self, runner: PhaseRunner) -> None:
        runner.run()

    # --- finishing: always runs ------------------------------------------------

    def _finish(self) -> None:
        report, step = self.report, self.stages.step
        storage: Storage | None = None
        promoted = False
        stop = self.guard.stopped()
        if stop is not None:  # one line and one error saying why, where it happened
            self.stages.fail(self.stages.current, stop)
        space = self.workspace
        if space is not None and self.guard.exit_code is None:
            lost = self.lease is not None and self.lease.lost
            with step("state"):
                promoted = promote_state(self.settings, space, report, lease_lost=lost)
        if self.claim is not None:
            with step("state"):
                end_building(self.claim, self.built, promoted)
        if report.project is not None and self.publishable:
            with step("publish"):
                storage = open_storage(self.settings.artifacts_url, self.settings.aws)
                self._publish(storage, report.project)
        report.finish(self.guard.exit_code)
        if storage is not None and self.settings.history.enabled and not report.skipped:
            with self.stages.advisory("history"):
                history.record(storage, report, self.settings.history)
        if self.settings.lineage.url and self.workspace is not None:
            with self.stages.advisory("lineage"):
                from entrypoint.lineage import emit_for  # a slow import: only when used

                emit_for(self.settings.lineage, report, self.workspace)
        paths = self._reports(storage)
        append_step_summary(report)
        with step("notify"):
            budget = self.guard.notify_budget()
            notify.send_all(self.settings.notify, report, self.settings.aws, budget_s=budget)
        # Once more, so the report's duration and timings include notifying.
        report.finish(self.guard.exit_code)
        self._write_reports(final=True)
        with step("metrics"):
            metrics.emit_for(self.settings, report)
        if storage is not None and paths and not self.keep_run_dir:
            self._republish_report(storage, paths)
        level = logging.INFO if report.exit_code == 0 else logging.WARNING
        ended = f"{report.headline()} (exit code {report.exit_code}) in {report.duration_s:.1f} s"
        log.log(level, "%s", ended)
        log.info("report: %s", paths[0] if paths else "not written")
        self._clean_up()

    def _publish(self, storage: Storage, project: str) -> None:
        target = self.workspace.target_path if self.workspace else self.settings.run_dir / "target"
        log_path = self.workspace.log_path if self.workspace else None
        try:
            publish_artifacts(
                storage, project, self.report, target, log_path, self.settings.artifacts_public_url
            )
        except Exception:
            self._keep_local_artifacts(target)
            raise

    def _keep_local_artifacts(self, target: Path) -> None:
        self.keep_run_dir = True
        log.warning("local artifacts kept in %s", target)

    def _republish_report(self, storage: Storage, paths: list[Path]) -> None:
        """The final report.json and page, with notifying timed; the copies published
        before notifying stay if this fails (the exit code was sent already)."""
        try:
            publish_reports(storage, str(self.report.project), self.report, paths, final=True)
        except RunnerError as exc:
            log.warning("the final report was not published: %s", exc.message)

    def _reports(self, storage: Storage | None) -> list[Path]:
        """Write the report files, then publish them beside the artifacts; a storage
        that fails here is an infrastructure error like any other."""
        paths = self._write_reports()
        if storage is None or not paths or self.keep_run_dir:
            return paths
        try:
            with self.stages.stage("report"):
                publish_reports(
                    storage, str(self.report.project), self.report, paths, last_run=self.marked
                )
        except StageFailed:
            self._keep_local_artifacts(self.settings.run_dir / "target")
            self.report.finish(self.guard.exit_code)
            paths = self._write_reports()
        return paths

    def _write_reports(self, final: bool = False) -> list[Path]:
        """Write the report files locally; if the report folder is not writable, say
        so (exit 4) and write them into the kept scratch folder instead."""
        folder = self.settings.report_folder
        try:
            return write_report_files(self.report, folder)
        except OSError as exc:
            if final:  # the first write failed the same way and said so
                return []
            message = (
                f"cannot write the report to {folder} ({exc.strerror or exc}): mount a writable "
                "folder there or set DBT_RUNNER_REPORT_DIR"
            )
            self.stages.fail("report", InfraError(message))
            self.report.finish(self.guard.exit_code)
            self.keep_run_dir = True
        try:
            return write_report_files(self.report, self.settings.run_dir / "report")
        except OSError as exc:
            log.error("cannot write the report anywhere: %s", exc)
            return []

    def _clean_up(self) -> None:
        if self.workspace is not None:
            self.workspace.close()  # key files go, even when the rest is kept
        if not self.keep_run_dir:
            shutil.rmtree(self.settings.run_dir, ignore_errors=True)


def run(settings: Settings) -> int:
    return Run(settings).execute()
