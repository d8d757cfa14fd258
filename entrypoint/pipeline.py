"""The `run` verb: the data path from validated settings to an exit code.

    settings -> project -> profile -> phases -> publish -> report files -> exit code

Every stage that fails is recorded in the RunReport, so publishing and the report
still happen, and the exit code says what broke (README, "Exit codes").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from entrypoint import credentials, notify
from entrypoint.errors import ConfigError, ExitCode, InfraError, RunnerError
from entrypoint.phases import DbtInvocation, Interrupted, PhaseRunner
from entrypoint.profiles import check_adapter, prepare_profile
from entrypoint.project import Project, prepare_project
from entrypoint.publish import last_run_key, publish_artifacts, publish_reports, run_key
from entrypoint.report import RunReport, StateInfo, append_step_summary, write_report_files
from entrypoint.settings import Job, Phase, Settings
from entrypoint.state import StateError, StateStore
from entrypoint.storage import FileStorage, join_key, open_storage
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
    """One `dbt-runner run`, or `dbt-runner retry` of an earlier run."""

    def __init__(
        self, settings: Settings, retry: bool = False, retry_of: str | None = None
    ) -> None:
        self.settings = settings
        self.retry = retry
        self.retry_of = retry_of
        self.recreated_state: Path | None = None
        self.run_dir = settings.work_dir / "runs" / settings.run_id
        self.report = RunReport(
            runner_version=runner_version(),
            dbt_version=dbt_version(),
            env=settings.env,
            job="retry" if retry else settings.job.value,
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

        self.stage = "state"
        retry_dir = self._prepare_retry(project) if self.retry else None
        state_dir = None if self.retry else self._prepare_state(project)

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
        runner = PhaseRunner(
            settings, project, invocation, self.target_path, self.report, state_dir
        )
        log.info(
            "run %s: project %s, env %s, job %s (%s)",
            settings.run_id,
            project.name,
            settings.env,
            self.report.job,
            ", ".join(p.value for p in settings.job_phases),
        )
        try:
            with dbt_environment(dbt_env):
                if not self.retry:
                    runner.run()
                elif retry_dir is not None:
                    runner.retry(retry_dir)
        finally:
            if state_dir is not None and self.report.state is not None:
                self.report.state = self.report.state.model_copy(update=runner.slim_nodes())

    def _prepare_retry(self, project: Project) -> Path | None:
        """The earlier run's run results in a folder for `dbt retry`, and the state it
        deferred to back where it was; None when that run needs no retry."""
        storage = open_storage(self.settings.artifacts_url, self.settings.aws)
        env = self.settings.env
        run_id = self.retry_of
        if run_id is None:
            last = storage.get_bytes(last_run_key(project.name, env))
            if last is None:
                raise ConfigError(
                    f"no earlier run of {project.name}/{env} under "
                    f"{self.settings.artifacts_url} to retry; pass --from-run RUN_ID"
                )
            run_id = str(json.loads(last)["run_id"])
        self.report.retry_of = run_id
        prefix = run_key(project.name, env, run_id)
        document = storage.get_bytes(join_key(prefix, "report.json"))
        if document is None:
            raise ConfigError(f"--from-run {run_id}: no such run under {storage.url_for(prefix)}")
        previous = RunReport.model_validate_json(document)
        if previous.status == "success":
            log.info("run %s succeeded: nothing to retry", run_id)
            return None
        results = storage.get_bytes(join_key(prefix, "run_results.json"))
        if results is None:
            raise ConfigError(
                f"run {run_id} stopped before dbt ran any node (no run_results.json): "
                "run the job again instead"
            )
        folder = self.run_dir / "retry"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run_results.json").write_bytes(results)
        log.info("retrying the failed and skipped nodes of run %s", run_id)
        # dbt retry reuses the earlier run's --state: put that state back where it was.
        state_path = json.loads(results).get("args", {}).get("state")
        deferred_to = previous.state.deferred_to if previous.state else None
        if state_path and deferred_to:
            store = self._state_store(project, self.settings.slim.defer_env or env)
            pointer = store.pointer_of(deferred_to) if store else None
            if store is None or pointer is None:
                raise InfraError(
                    f"run {run_id} deferred to state {deferred_to}, which is no longer kept "
                    "under DBT_RUNNER_STATE_URL"
                )
            try:
                store.fetch_manifest(pointer, Path(state_path), self.settings.warehouse.type.value)
            except StateError as exc:
                raise InfraError(f"the state run {run_id} deferred to: {exc}") from None
            self.recreated_state = Path(state_path)
            self.report.state = StateInfo(url=store.url(), mode="slim", deferred_to=deferred_to)
        return folder

    def _state_store(self, project: Project, env: str) -> StateStore | None:
        if self.settings.state_url is None:
            return None
        return StateStore(
            open_storage(self.settings.state_url, self.settings.aws), project.name, env
        )

    def _prepare_state(self, project: Project) -> Path | None:
        """Fetch the last good state. Returns the folder holding its manifest for a slim
        build, or None to build everything (no state yet, or one that cannot be trusted).
        Restores dbt's parse cache from it when it fits this project and dbt."""
        settings = self.settings
        env = settings.slim.defer_env or settings.env
        store = self._state_store(project, env)
        if store is None:
            return None
        problem: str | None = None
        try:
            pointer = store.latest()
        except StateError as exc:
            pointer, problem = None, str(exc)
        if pointer is None and problem is None:
            problem = "no state yet"
        info = StateInfo(url=store.url(), mode="full")
        self.report.state = info
        state_dir = None
        if pointer is not None:
            info.warm_parse = store.restore_partial_parse(
                pointer, self.target_path, project.dir, self.report.dbt_version
            )
            if settings.job is Job.SLIM:
                folder = self.run_dir / "state"
                try:
                    store.fetch_manifest(pointer, folder, settings.warehouse.type.value)
                    state_dir = folder
                    info.mode, info.deferred_to = "slim", pointer.run_id
                except StateError as exc:
                    problem = str(exc)
        if settings.job is Job.SLIM and state_dir is None:
            info.reason = (
                f"slim job without usable state at {store.url()} ({problem}): building everything"
            )
            log.warning("%s", info.reason)
        elif state_dir is not None:
            log.info(
                "slim: comparing with, and deferring to, run %s (%s)", info.deferred_to, store.url()
            )
        if info.warm_parse:
            log.info("parse cache restored from the state")
        return state_dir

    # --- finishing: always runs ------------------------------------------------

    def _finish(self, interrupted_by: int | None) -> None:
        report = self.report
        storage = None
        project = report.project
        if self.project is not None and interrupted_by is None and report.succeeding():
            self._promote_state(self.project)
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

    def _not_promotable(self) -> str | None:
        """Why this run's manifest must not become the state, if it must not: the state
        claims every node's code is what the warehouse holds, so only a run that built
        everything it did not defer may set it."""
        settings = self.settings
        if not self.retry and not {Phase.BUILD, Phase.RUN} & set(settings.job_phases):
            return "the job has no build or run phase"
        if settings.selector or settings.exclude:
            return "the job built a selection (DBT_RUNNER_SELECTOR / DBT_RUNNER_EXCLUDE)"
        if settings.select and settings.job is not Job.SLIM:
            return "the job built a selection (DBT_RUNNER_SELECT)"
        return None

    def _promote_state(self, project: Project) -> None:
        """A good run's manifest becomes the state slim jobs compare with and defer to."""
        store = self._state_store(project, self.settings.env)
        if store is None:
            return
        blocker = self._not_promotable()
        if blocker is not None:
            log.info("state not promoted: %s", blocker)
            return
        self.stage = "state"
        try:
            promoted = store.promote(self.report, self.target_path, project.dir)
        except RunnerError as exc:
            log.error("%s", exc.message)
            self.report.add_error("state", exc.message, exc.exit_code)
            return
        if self.report.state is None:
            self.report.state = StateInfo(url=store.url(), mode="full")
        self.report.state.promoted = promoted
        if promoted:
            log.info("state promoted: %s now holds run %s", store.url(), self.report.run_id)

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
        if self.recreated_state is not None:
            shutil.rmtree(self.recreated_state, ignore_errors=True)
        if not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def run(settings: Settings) -> int:
    return Run(settings).execute()


def retry(settings: Settings, retry_of: str | None = None) -> int:
    return Run(settings, retry=True, retry_of=retry_of).execute()
