"""The `retry` verb: re-run what an earlier run did not finish, through `dbt retry`.

The earlier run (the last one of the project and env, or `--from-run RUN_ID`) is read
from its published report and run results. `dbt retry` re-runs every node whose result
is error, fail or skipped, and a stopped run's results list each node it had selected
but not finished as skipped, so nothing it owed is forgotten. Where dbt retry cannot
cover the rest (a run that stopped before a later build phase ran, or whose unfinished
nodes are unknown), the retry refuses with the command to run instead: a retry never
runs less than the run it repairs, and the state is promoted only when the earlier
run's job covered the whole project and everything it owed has now built.

What a retry may complete is the ledger's rule (ledger.py): never a run that did not
finish (killed: it left only its start mark), one made for another target, or one
whose project changed under nodes it had already built.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from entrypoint import ledger
from entrypoint.errors import ConfigError, InfraError
from entrypoint.lease import current_holder
from entrypoint.phases import NODE_PHASES, RETRY, PhaseRunner
from entrypoint.pipeline import Run
from entrypoint.publish import RUNNING, read_last_run, run_key
from entrypoint.report import PhaseResult, RunReport, StateInfo
from entrypoint.settings import Settings
from entrypoint.state import StateError, open_state
from entrypoint.storage import join_key, open_storage
from entrypoint.workspace import Workspace

log = logging.getLogger(__name__)

NODE_PHASE_NAMES = {phase.value for phase in NODE_PHASES} | {RETRY}


def retried_phase(previous: RunReport) -> PhaseResult:
    """The node phase whose run results dbt retry repeats: the last that ran. Refuses
    (ConfigError) when that would leave part of the earlier job undone."""
    node_phases = [p for p in previous.phases if p.name in NODE_PHASE_NAMES]
    ran = [p for p in node_phases if p.status != "skipped"]
    again = f"run the job again instead (dbt-runner run); run {previous.run_id}"
    if not ran:
        raise ConfigError(f"{again} stopped before dbt ran any node: nothing to retry")
    last = ran[-1]
    never = [p.name for p in node_phases[node_phases.index(last) + 1 :]]
    if never:
        raise ConfigError(
            f"{again} stopped in its {last.name} phase, so its {', '.join(never)} phase "
            "never ran and dbt retry cannot run it"
        )
    if not last.results_complete:
        raise ConfigError(
            f"{again} was stopped in its {last.name} phase before dbt could list the nodes "
            "it had not run"
        )
    return last


class Retry(Run):
    """`dbt-runner retry`: the run's data path, with the earlier run's results in place
    of a fresh selection."""

    job_name = "retry"

    def __init__(self, settings: Settings, retry_of: str | None = None) -> None:
        super().__init__(settings)
        self.retry_of = retry_of
        self.retry_dir: Path | None = None
        self.recreated_state: Path | None = None
        self.retried: set[str] = set()  # what dbt retry will run again

    def _before_lease(self, project: str) -> None:
        """A last run that has not finished holds the env's lease, or held it until it
        was killed: the retry refuses it rather than waiting or skipping."""
        storage = open_storage(self.settings.artifacts_url, self.settings.aws)
        last = read_last_run(storage, project, self.settings.env)
        if last is None or last["status"] != RUNNING:
            return
        if self.retry_of not in (None, last["run_id"]):
            return
        holder = current_holder(self.settings, project)
        if holder is not None and holder.run_id == last["run_id"]:
            raise ConfigError(
                f"run {last['run_id']} has not finished: it is still running, or was killed "
                f"and its lease expires at {holder.expires_at:%H:%M:%S} UTC; when it is gone, "
                "run the job again (dbt-runner run)"
            )
        raise ConfigError(
            f"run {last['run_id']} did not finish: it was killed, so what it built is "
            "unknown; run the job again (dbt-runner run)"
        )

    def _prepare_state(self, workspace: Workspace) -> None:
        project, env = workspace.project.name, self.settings.env
        storage = open_storage(self.settings.artifacts_url, self.settings.aws)
        last = read_last_run(storage, project, env)
        run_id = self.retry_of or self._last_run_id(last, project, env)
        self.report.retry_of = run_id
        prefix = run_key(project, env, run_id)
        document = storage.get_bytes(join_key(prefix, "report.json"))
        if document is None:
            raise ConfigError(f"--from-run {run_id}: no such run under {storage.url_for(prefix)}")
        previous = RunReport.model_validate_json(document)
        self.report.builds_whole_project = previous.builds_whole_project
        if previous.status == "success":
            log.info("run %s succeeded: nothing to retry", run_id)
            return
        blocker = ledger.retry_blocker(previous, self.report.target)
        if blocker is not None:
            raise ConfigError(blocker)
        phase = retried_phase(previous)
        key = join_key(prefix, "phases", phase.name, "run_results.json")
        results = storage.get_bytes(key) or storage.get_bytes(join_key(prefix, "run_results.json"))
        manifest = storage.get_bytes(join_key(prefix, "manifest.json"))
        if results is None or manifest is None:
            raise ConfigError(f"run {run_id} left no run results to retry: run the job again")
        self.retry_dir = self.settings.run_dir / "retry"
        (self.retry_dir / "built").mkdir(parents=True, exist_ok=True)
        (self.retry_dir / "run_results.json").write_bytes(results)
        (self.retry_dir / "built" / "manifest.json").write_bytes(manifest)
        self.retried = ledger.retried_nodes(json.loads(results))
        log.info("retrying the failed, skipped and unfinished nodes of run %s", run_id)
        self._recreate_state(previous, json.loads(results).get("args", {}).get("state"))

    def _last_run_id(self, last: dict[str, str] | None, project: str, env: str) -> str:
        if last is None:
            raise ConfigError(
                f"no earlier run of {project}/{env} under {self.settings.artifacts_url} to "
                "retry; pass --from-run RUN_ID"
            )
        return str(last["run_id"])

    def _recreate_state(self, previous: RunReport, state_path: str | None) -> None:
        """dbt retry reuses the earlier run's --state: put that state back where it was."""
        deferred_to = previous.state.deferred_to if previous.state else None
        if not state_path or not deferred_to:
            return
        store = open_state(self.settings, str(previous.project), self.settings.defer_env)
        pointer = store.pointer_of(deferred_to) if store else None
        if store is None or pointer is None:
            raise InfraError(
                f"run {previous.run_id} deferred to state {deferred_to}, which is no longer "
                "kept under DBT_RUNNER_STATE_URL"
            )
        try:
            manifest, _ = store.manifest(pointer)  # trusted by that run: still intact?
        except StateError as exc:
            raise InfraError(f"the state run {previous.run_id} deferred to: {exc}") from None
        self.recreated_state = Path(state_path)
        self.recreated_state.mkdir(parents=True, exist_ok=True)
        (self.recreated_state / "manifest.json").write_bytes(manifest)
        self.report.state = StateInfo(url=store.url(), mode="slim", deferred_to=deferred_to)

    def _has_work(self) -> bool:
        return self.retry_dir is not None

    def _execute(self, runner: PhaseRunner) -> None:
        if self.retry_dir is None:
            return
        if not runner.prepare_retry():
            return
        modified = runner.modified_since(self.retry_dir / "built")
        run_id = str(self.report.retry_of)
        if modified is None:
            raise ConfigError(
                f"dbt could not compare the project with run {run_id}'s manifest: run the job "
                "again (dbt-runner run)"
            )
        changed = ledger.changed_since(run_id, modified, self.retried)
        if changed is not None:
            raise ConfigError(changed)
        runner.retry(self.retry_dir)

    def _clean_up(self) -> None:
        if self.recreated_state is not None:
            shutil.rmtree(self.recreated_state, ignore_errors=True)
        super()._clean_up()


def retry(settings: Settings, retry_of: str | None = None) -> int:
    return Retry(settings, retry_of).execute()
