"""The `run` verb: the data path from validated settings to an exit code.

    settings -> project -> profile -> phases -> publish -> report files -> exit code

Every stage that fails is recorded in the RunReport, so publishing and the report
still happen, and the exit code says what broke (README, "Exit codes").
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from entrypoint import credentials, notify
from entrypoint.errors import ExitCode, RunnerError
from entrypoint.phases import DbtInvocation, Interrupted, PhaseRunner
from entrypoint.profiles import check_adapter, prepare_profile
from entrypoint.project import Project, prepare_project
from entrypoint.publish import publish_artifacts, publish_reports
from entrypoint.report import RunReport, append_step_summary, write_report_files
from entrypoint.settings import Settings
from entrypoint.storage import FileStorage, open_storage
from entrypoint.versions import dbt_version, runner_version

log = logging.getLogger(__name__)


class InterruptGuard:
    """Turns the first SIGINT/SIGTERM into KeyboardInterrupt while dbt runs.

    dbt then cancels its queries and writes run_results.json; the runner goes on to
    publish and report what ran. Later signals, and any while finishing, are noted
    and ignored: finishing is bounded by timeouts.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.armed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        log.warning("received %s: stopping, then writing the report", signal.Signals(signum).name)
        if self.armed and first:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[InterruptGuard]:
        previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        self.armed = True
        try:
            yield self
        finally:
            self.armed = False
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def exit_code(self) -> int | None:
        if self.signum is None:
            return None
        return ExitCode.SIGINT if self.signum == signal.SIGINT else ExitCode.SIGTERM


@contextmanager
def dbt_environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables dbt reads in this process (secrets included), then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Run:
    """One `dbt-runner run`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.work_dir / "runs" / settings.run_id
        self.report = RunReport(
            runner_version=runner_version(),
            dbt_version=dbt_version(),
            env=settings.env,
            job=settings.job.value,
            run_id=settings.run_id,
        )
        self.project: Project | None = None
        self.credentials = credentials.Credentials()
        self.stage = "project"
        # dbt's own DBT_TARGET_PATH / DBT_LOG_PATH win; otherwise each run gets its own.
        user_target = os.environ.get("DBT_TARGET_PATH")
        user_logs = os.environ.get("DBT_LOG_PATH")
        self.target_path = Path(user_target) if user_target else self.run_dir / "target"
        self.log_path = Path(user_logs) if user_logs else self.run_dir / "logs"
        self.keep_run_dir = False

    # --- the data path ---------------------------------------------------------

    def execute(self) -> int:
        guard = InterruptGuard()
        with guard.installed():
            try:
                self._prepare_and_run_dbt()
            except RunnerError as exc:
                log.error("%s", exc.message)
                self.report.add_error(self.stage, exc.message, exc.exit_code)
            except (Interrupted, KeyboardInterrupt):
                log.warning("run interrupted during %s", self.stage)
            guard.armed = False  # from here on, finish whatever happens
            self._finish(guard.exit_code)
        return self.report.exit_code

    def _prepare_and_run_dbt(self) -> None:
        settings = self.settings
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stage = "project"
        self.project = project = prepare_project(settings.project_dir, settings.work_dir)
        self.report.project = project.name
        if not self.target_path.is_absolute():
            self.target_path = project.dir / self.target_path
        if not self.log_path.is_absolute():
            self.log_path = project.dir / self.log_path
        self.stage = "profile"
        check_adapter(settings, project)
        self.stage = "credentials"
        self.credentials = credentials.fetch(settings, self.run_dir / "secrets")
        for source in self.credentials.sources:
            log.info("credentials: %s", source)
        self.report.credentials = self.credentials.sources
        self.stage = "profile"
        profile = prepare_profile(settings, project, self.run_dir, self.credentials.fields)
        self.report.adapter = profile.adapter

        self.stage = "dbt"
        dbt_env = {
            "DBT_TARGET_PATH": str(self.target_path),
            "DBT_LOG_PATH": str(self.log_path),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": os.environ.get(
                "DBT_SEND_ANONYMOUS_USAGE_STATS", "false"
            ),
            **profile.env,
        }
        invocation = DbtInvocation(
            project_dir=project.dir,
            profiles_dir=profile.dir,
            target=profile.target,
            vars=settings.vars,
        )
        runner = PhaseRunner(settings, project, invocation, self.target_path, self.report)
        log.info(
            "run %s: project %s, env %s, job %s (%s)",
            settings.run_id,
            project.name,
            settings.env,
            settings.job.value,
            ", ".join(p.value for p in settings.job_phases),
        )
        with dbt_environment(dbt_env):
            runner.run()

    # --- finishing: always runs ------------------------------------------------

    def _finish(self, interrupted_by: int | None) -> None:
        report = self.report
        storage = None
        project = report.project
        if project is not None:
            self.stage = "publish"
            try:
                storage = open_storage(self.settings.artifacts_url, self.settings.aws)
                publish_artifacts(
                    storage,
                    project,
                    report,
                    self.target_path,
                    self.log_path,
                    self.settings.artifacts_public_url,
                )
            except RunnerError as exc:
                self._publish_failed(exc)
        report.finish(interrupted_by)
        paths = self._write_reports(interrupted_by)
        if storage is not None and project is not None and not self.keep_run_dir:
            try:
                publish_reports(storage, project, report, paths)
            except RunnerError as exc:
                self._publish_failed(exc)
                report.finish(interrupted_by)
                paths = self._write_reports(interrupted_by)
        append_step_summary(report)
        self.stage = "notify"
        notify.send_all(self.settings.notify, report, self.settings.aws)
        level = logging.INFO if report.exit_code == 0 else logging.WARNING
        summary = f"{report.headline()} (exit code {report.exit_code}) in {report.duration_s:.1f} s"
        log.log(level, "%s", summary)
        log.info("report: %s", paths[0] if paths else "not written")
        self._clean_up()

    def _write_reports(self, interrupted_by: int | None) -> list[Path]:
        """Write the report files locally; if the report folder is not writable, say
        so (exit 4) and write them into the kept scratch folder instead."""
        folder = self.report_dir()
        try:
            return write_report_files(self.report, folder)
        except OSError as exc:
            message = (
                f"cannot write the report to {folder} ({exc.strerror or exc}): mount a writable "
                "folder there or set DBT_RUNNER_REPORT_DIR"
            )
            log.error("%s", message)
            self.report.add_error("report", message, ExitCode.INFRA)
            self.report.finish(interrupted_by)
            self.keep_run_dir = True
        try:
            return write_report_files(self.report, self.run_dir / "report")
        except OSError as exc:
            log.error("cannot write the report anywhere: %s", exc)
            return []

    def _publish_failed(self, exc: RunnerError) -> None:
        log.error("%s", exc.message)
        self.report.add_error("publish", exc.message, exc.exit_code)
        self.keep_run_dir = True
        log.warning("local artifacts kept in %s", self.target_path)

    def report_dir(self) -> Path:
        """Where report.json, summary.md and junit.xml are written locally."""
        if self.settings.report_dir is not None:
            return self.settings.report_dir
        storage = open_storage(self.settings.artifacts_url, self.settings.aws)
        if isinstance(storage, FileStorage):
            return storage.root
        return self.settings.work_dir / "report"

    def _clean_up(self) -> None:
        self.credentials.remove_files()  # even when the rest of the scratch folder is kept
        if not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def run(settings: Settings) -> int:
    return Run(settings).execute()
