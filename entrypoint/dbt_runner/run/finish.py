"""Finishing a run, whatever happened: promote (or not), publish, history, lineage,
the report files, notify, metrics, in that order; each step's failure is the run's
error (or, for history and lineage, a warning), never the end of finishing. Each step
returns what it found and this module puts it in the report; `report.finish()` is
called once, after every step that can add an error, before the last write.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from dbt_runner.engine.startup import settle
from dbt_runner.errors import InfraError, RunnerError
from dbt_runner.outputs import history, metrics, notify
from dbt_runner.outputs.comment import post_comment, why_no_comment
from dbt_runner.outputs.publish import (
    FINAL,
    publish_artifacts,
    publish_reports,
    run_links,
)
from dbt_runner.report.files import write_report_files
from dbt_runner.report.github import append_step_summary, print_node_annotations
from dbt_runner.run.stages import StageFailed
from dbt_runner.run.state_step import StateStep
from dbt_runner.storage import Storage, open_storage
from dbt_runner.storage.file import owner_hint
from dbt_runner.workspace.scratch import remove_run_dir

if TYPE_CHECKING:
    from collections.abc import Callable

    from dbt_runner.aws import AwsSettings
    from dbt_runner.config import NotifySettings
    from dbt_runner.report.model import RunReport
    from dbt_runner.run.guard import Stopped
    from dbt_runner.run.outcome import RunOutcome
    from dbt_runner.run.stages import Stages

log = logging.getLogger(__name__)


class Finish:
    """The finishing steps of one run."""

    def __init__(
        self,
        outcome: RunOutcome,
        report: RunReport,
        stages: Stages,
        release_lease: Callable[[], None],
    ) -> None:
        """`outcome`: what the run built and found; `report` and `stages`: where the
        steps say what they find; `release_lease`: gives the env's lease back."""
        self.run, self.release_lease = outcome, release_lease
        self.report, self.settings, self.stages = report, outcome.settings, stages
        self.storage: Storage | None = None
        self.keep_run_dir = False  # the local artifacts, when they could not be published
        self.errors_reported = 0  # the report's errors when its files were first written

    def everything(self, stopped: Stopped | None) -> None:
        """Every step, in order; `stopped`: the stop that ended the run, if one did."""
        settle()  # what dbt left lives until the end: the collector skips it from here
        if stopped is not None:  # one line and one error saying why, where it happened
            self.stages.fail(self.stages.current, stopped)
            # Before anything renders the report: every file and message says the stop.
            self.report.stopped_by = stopped.exit_code
        # What a later run reads: the state, the artifacts, the history, the reports.
        StateStep(self.run, self.report, self.stages).everything()
        self.publish()
        self.history()
        self.report.finish()  # the verdict and the clock: nothing after adds an error
        with self.stages.step("metrics"):
            metrics.emit_for(self.settings, self.report)
        self.report.finishing = self._still_to_come()
        paths = self.reports()
        self.release_lease()  # the env is free: nothing after this is read by a run
        # What people read, within what is left after a stop.
        append_step_summary(self.report)
        print_node_annotations(self.report)
        self.lineage()
        self.comment()
        self.notify()
        self.report.finishing = []
        self.final(paths)

    def _still_to_come(self) -> list[str]:
        """The steps after the reports' first write: a copy that still names them was
        left by a process killed while doing them."""
        steps = ["lineage"] if self.settings.lineage.url else []
        steps += ["comment"] if self.report.pr is not None else []
        return [*steps, "notify"]

    def publish(self) -> None:
        """dbt's artifacts and log beside the run's reports; the docs when generated."""
        project = self.report.project
        if project is None or not self.run.publishable:
            return
        workspace = self.run.workspace
        target = workspace.target_path if workspace else self.settings.run_dir / "target"
        public = self.settings.artifacts_public_url
        with self.stages.step("publish"):
            storages = self.run.storages
            storage = self.storage = (
                storages.artifacts
                if storages is not None
                else open_storage(self.settings.artifacts_url, self.settings.aws)
            )
            self.report.links = run_links(storage, project, self.report, public)
            try:
                log_path = workspace.log_path if workspace else None
                published, docs = publish_artifacts(
                    storage, project, self.report, target, log_path, public
                )
            except Exception:
                self._keep_local_artifacts(target)
                raise
            self.report.artifacts, self.report.links.docs_url = published, docs

    def history(self) -> None:
        settings = self.settings.history
        if self.storage is None or not settings.enabled or self.report.skipped:
            return
        with self.stages.advisory("history"):
            self.report.history, warnings = history.record(self.storage, self.report, settings)
            for warning in warnings:
                self.stages.warn(warning)

    def lineage(self) -> None:
        if not self.settings.lineage.url or self.run.workspace is None:
            return
        left = self.run.notify_budget()
        if left is not None and left <= 0:
            self.stages.warn("lineage not sent: the time after the stop was spent")
            return
        with self.stages.advisory("lineage"):
            from dbt_runner.outputs.lineage import emit_for  # a slow import: only when used

            info = emit_for(self.settings.lineage, self.report, self.run.workspace, left)
            self.report.lineage = info
            if info.error is not None:
                self.stages.warn(
                    f"lineage: {info.events} event(s) sent to {info.url}, then {info.error}"
                )

    def comment(self) -> None:
        """The pull request's comment, updated in place; not after a stop (notifying has
        the little time left)."""
        why = why_no_comment(self.settings.github, self.report)
        if why:
            self.stages.warn(why)
        if why is not None or self.run.stop.exit_code is not None or self.report.pr is None:
            return
        with self.stages.advisory("comment"):
            self.report.pr.comment_url = post_comment(self.settings.github, self.report)

    def notify(self) -> None:
        with self.stages.step("notify"):
            budget = self.run.notify_budget()
            problems = notify_channels(
                self.settings.notify, self.report, self.settings.aws, budget_s=budget
            )
            for problem in problems:
                self.stages.warn(problem)

    def reports(self) -> list[Path]:
        """Write the report files, then publish them beside the artifacts; a storage
        that fails here is an infrastructure error like any other."""
        paths = self._write()
        if self.storage is not None and paths and not self.keep_run_dir:
            try:
                with self.stages.stage("report"):
                    last_run = self.run.marked
                    project = str(self.report.project)
                    publish_reports(self.storage, project, self.report, paths, last_run=last_run)
            except StageFailed:
                self._keep_local_artifacts(self.settings.run_dir / "target")
                paths = self._write()  # saying the failure
        self.errors_reported = len(self.report.errors)
        return paths

    def final(self, paths: list[Path]) -> None:
        """The report as it ends (notifying and metrics included), then the clean-up.
        Notifying changed the clock and the notifications (report.json, the page); a
        step that failed since changed what every file says."""
        only = FINAL if len(self.report.errors) == self.errors_reported else None
        self._write(final=True, only=only)
        if self.storage is not None and paths and not self.keep_run_dir:
            try:
                project = str(self.report.project)
                publish_reports(self.storage, project, self.report, paths, only=only)
            except RunnerError as exc:  # the copies published before notifying stay
                log.warning("the final report was not published: %s", exc.message)
        report = self.report
        level = logging.INFO if report.exit_code == 0 else logging.WARNING
        ended = f"{report.headline()} (exit code {report.exit_code}) in {report.duration_s:.1f} s"
        log.log(level, "%s", ended)
        log.info("report: %s", paths[0] if paths else "not written")
        if self.run.workspace is not None:
            self.run.workspace.close()  # key files go, even when the rest is kept
        if not self.keep_run_dir:
            remove_run_dir(self.settings.run_dir)

    def _write(self, final: bool = False, only: Collection[str] | None = None) -> list[Path]:
        """Write the report files (`only`: these of them) locally; if the report folder
        is not writable, say so (exit 4) and write them into the kept scratch folder."""
        folder = self.settings.report_folder
        try:
            with self.stages.timed("report"):
                return write_report_files(self.report, folder, only)
        except OSError as exc:
            if final:  # the first write failed the same way and said so
                return []
            message = (
                f"cannot write the report to {folder} ({exc.strerror or exc}): mount a writable "
                f"folder there or set DBT_RUNNER_REPORT_DIR{owner_hint(exc)}"
            )
            self.stages.fail("report", InfraError(message))
            self.keep_run_dir = True
        try:
            return write_report_files(self.report, self.settings.run_dir / "report", only)
        except OSError as exc:
            log.error("cannot write the report anywhere: %s", exc)
            return []

    def _keep_local_artifacts(self, target: Path) -> None:
        self.keep_run_dir = True
        log.warning("local artifacts kept in %s", target)


def notify_channels(
    settings: NotifySettings,
    report: RunReport,
    aws_settings: AwsSettings | None = None,
    quiet: bool = False,
    budget_s: float | None = None,
) -> list[str]:
    """Every run's notifying, configured or not: what was sent goes into the report,
    the problems are returned. `settings`: DBT_RUNNER_NOTIFY__*; `report`: the run's;
    `aws_settings`: for triggers' secrets; `quiet`: log nothing; `budget_s`: the time
    it may take in all (after a stop)."""
    sent, problems = notify.send_all(settings, report, aws_settings, quiet, budget_s)
    report.notifications = sent
    return problems
