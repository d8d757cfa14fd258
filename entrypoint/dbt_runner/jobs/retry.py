"""The `retry` verb as a job kind: re-run what an earlier run did not finish, through
`dbt retry`.

The earlier run (the last one of the project and env, or `--from-run RUN_ID`) is read
from its published report and run results. `dbt retry` re-runs every node whose result
is error, fail or skipped, and a stopped run's results list each node it had selected
but not finished as skipped, so nothing it owed is forgotten. Where dbt retry cannot
cover the rest (a run that stopped before a later build phase ran, or whose unfinished
nodes are unknown), the retry refuses with the command to run instead: a retry never
runs less than the run it repairs, and the state is promoted only when the earlier
run's job covered the whole project and everything it owed has now built.

What a retry may complete is the ledger's rule (state/ledger.py): never a run that did
not finish (killed: it left only its start mark), one made for another target, or one
whose project changed under nodes it had already built.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from dbt_runner.config import Settings
from dbt_runner.engine.kinds import NODE_COMMANDS
from dbt_runner.engine.session import NO_WRITE, PARSE, RETRY
from dbt_runner.errors import ConfigError, InfraError
from dbt_runner.jobs.base import Context, JobKind, Prepared
from dbt_runner.jobs.step import Step
from dbt_runner.outputs.publish import RUNNING, read_last_run
from dbt_runner.report.model import PhaseResult, RunReport, StateInfo
from dbt_runner.report.parts import Inputs
from dbt_runner.state import ledger
from dbt_runner.state.lease import current_holder
from dbt_runner.state.store import StateError, open_state
from dbt_runner.state.writes import WriteLogStore
from dbt_runner.storage import Storage, join_key, open_storage
from dbt_runner.storage.keys import run_key
from dbt_runner.workspace.inputs import env_var_names
from dbt_runner.workspace.project import project_has_packages

if TYPE_CHECKING:
    from dbt_runner.engine.invocation import DbtInvocation
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.report.parts import Target
    from dbt_runner.workspace.prepare import Workspace

log = logging.getLogger(__name__)
AGAIN = "run the job again (dbt-runner run)"


def retried_phase(previous: RunReport) -> PhaseResult:
    """The node phase whose run results dbt retry repeats: the last that ran. Refuses
    (ConfigError) when that would leave part of the earlier job undone."""
    node_phases = [p for p in previous.phases if p.name in NODE_COMMANDS]
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


def _ran_nodes(report: RunReport) -> bool:
    """Whether dbt ran any node in `report`'s run (a retry that refused ran none: the
    next retry completes the run it would have)."""
    return any(p.name in NODE_COMMANDS and p.status != "skipped" for p in report.phases)


def nothing_written_since(
    settings: Settings, previous: RunReport, project: str, target: Target | None
) -> list[str]:
    """The runs a retry of `previous` completes (it, and those it completes), once the
    target's write log shows nothing else wrote into it since (ConfigError).
    `settings`: the retry's; `project`: its name; `target`: where the run wrote."""
    store = open_state(settings, project, settings.env)
    if store is None or target is None:
        return [previous.run_id]
    writes = WriteLogStore(store.storage, project).read(target)
    refused = ledger.written_after(previous, writes)
    if refused is not None:
        raise ConfigError(refused)
    own = writes.find(previous.run_id) if writes is not None else None
    return [previous.run_id, *(own.completes if own is not None else [])]


def retry_state(
    settings: Settings, previous: RunReport, deferred: StateInfo | None, completes: list[str]
) -> StateInfo | None:
    """What a retry's promotion would record: the earlier run's view of its target's
    writes, covering the retry and the runs it completes too (`completes`).
    `settings`: the retry's; `previous`: the run it completes; `deferred`: the state that
    run deferred to, put back."""
    store = open_state(settings, str(previous.project), settings.env)
    if store is None:
        return deferred
    info = deferred or StateInfo(url=store.url(), mode="full")
    earlier = previous.state.horizon if previous.state is not None else None
    if earlier is not None:
        covers = sorted({*earlier.covers, *completes, settings.run_id})
        info.horizon = earlier.model_copy(update={"covers": covers})
    return info


class Retry(JobKind):
    """`dbt-runner retry`: the run's data path, with the earlier run's results in place
    of a fresh selection."""

    name = "retry"

    def __init__(self, settings: Settings, retry_of: str | None = None) -> None:
        super().__init__(settings)
        self.retry_of = retry_of
        self.retry_dir: Path | None = None  # the earlier run's results, and its manifest
        self.recreated_state: Path | None = None
        self.retried: set[str] = set()  # what dbt retry will run again
        self.previous_id = retry_of or ""  # the run it completes, once found
        self.built_with: Inputs | None = None  # that run's vars and environment, digested
        self.workspace: Workspace | None = None  # this run's, once prepared

    def artifacts(self) -> Storage:
        return open_storage(self.settings.artifacts_url, self.settings.aws)

    def before_lease(self, project: str) -> None:
        """A last run that has not finished holds the env's lease, or held it until it
        was killed: the retry refuses it rather than waiting or skipping."""
        last = read_last_run(self.artifacts(), project, self.settings.env)
        if last is None or last["status"] != RUNNING or self.retry_of not in (None, last["run_id"]):
            return
        holder = current_holder(self.settings, project)
        if holder is not None and holder.run_id == last["run_id"]:
            raise ConfigError(
                f"run {last['run_id']} has not finished: it is still running, or was killed "
                f"and its lease expires at {holder.expires_at:%H:%M:%S} UTC; when it is gone, "
                f"{AGAIN}"
            )
        raise ConfigError(
            f"run {last['run_id']} did not finish: it was killed, so what it built is "
            f"unknown; {AGAIN}"
        )

    def prepare(
        self, workspace: Workspace, target: Target | None, dbt_version: str | None
    ) -> Prepared:
        project, env, storage = workspace.project.name, self.settings.env, self.artifacts()
        run_id = self.retry_of or self._last_run_id(storage, project, env)
        previous = self._report(storage, project, run_id)
        while self.retry_of is None and previous.retry_of and not _ran_nodes(previous):
            log.info(
                "run %s was a retry that ran no node: completing run %s", run_id, previous.retry_of
            )
            run_id = previous.retry_of
            previous = self._report(storage, project, run_id)
        self.previous_id = run_id
        prefix = run_key(project, env, run_id)
        prepared = Prepared(retry_of=run_id, builds_whole_project=previous.builds_whole_project)
        if previous.status == "success":
            log.info("run %s succeeded: nothing to retry", run_id)
            return prepared
        blocker = ledger.retry_blocker(previous, target)
        if blocker is not None:
            raise ConfigError(blocker)
        prepared.completes = nothing_written_since(self.settings, previous, project, target)
        self.built_with, self.workspace = previous.inputs, workspace
        prepared.inputs_unknown = previous.inputs is None
        if previous.inputs is None:
            log.info("run %s recorded no inputs: the state this retry promotes says so", run_id)
        results = self._fetch(storage, prefix, previous)
        log.info("retrying the failed, skipped and unfinished nodes of run %s", run_id)
        deferred = self._recreate_state(previous, json.loads(results).get("args", {}))
        prepared.state = retry_state(self.settings, previous, deferred, prepared.completes)
        return prepared

    def _report(self, storage: Storage, project: str, run_id: str) -> RunReport:
        prefix = run_key(project, self.settings.env, run_id)
        document = storage.get_bytes(join_key(prefix, "report.json"))
        if document is None:
            raise ConfigError(f"--from-run {run_id}: no such run under {storage.url_for(prefix)}")
        return RunReport.model_validate_json(document)

    def _last_run_id(self, storage: Storage, project: str, env: str) -> str:
        last = read_last_run(storage, project, env)
        if last is None:
            raise ConfigError(
                f"no earlier run of {project}/{env} under {self.settings.artifacts_url} to "
                "retry; pass --from-run RUN_ID"
            )
        return str(last["run_id"])

    def _fetch(self, storage: Storage, prefix: str, previous: RunReport) -> bytes:
        """The earlier run's results (what dbt retry repeats) and manifest (what it
        built), in this run's folder."""
        phase = retried_phase(previous)
        key = join_key(prefix, "phases", phase.name, "run_results.json")
        results = storage.get_bytes(key) or storage.get_bytes(join_key(prefix, "run_results.json"))
        manifest = storage.get_bytes(join_key(prefix, "manifest.json"))
        if results is None or manifest is None:
            raise ConfigError(f"run {previous.run_id} left no run results to retry: {AGAIN}")
        self.retry_dir = self.settings.run_dir / "retry"
        (self.retry_dir / "built").mkdir(parents=True, exist_ok=True)
        (self.retry_dir / "run_results.json").write_bytes(results)
        (self.retry_dir / "built" / "manifest.json").write_bytes(manifest)
        self.retried = ledger.retried_nodes(json.loads(results))
        return results

    def _recreate_state(self, previous: RunReport, args: dict[str, str]) -> StateInfo | None:
        """dbt retry reuses the earlier run's --state: put that state back where it was."""
        deferred_to = previous.state.deferred_to if previous.state else None
        state_path = args.get("state")
        if not state_path or not deferred_to:
            return None
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
        return StateInfo(url=store.url(), mode="slim", deferred_to=deferred_to)

    def has_work(self) -> bool:
        return self.retry_dir is not None

    def steps(self, phases: list[Step], invocation: DbtInvocation) -> list[Step]:
        """Packages (a fresh container has none), the project parsed and compared with
        what the earlier run built (before_step), then dbt retry: its own steps."""
        common = tuple(invocation.common_args())
        steps = []
        if project_has_packages(invocation.project_dir):
            steps.append(Step("deps", "dbt", ("deps",), common))
        steps.append(Step(PARSE, "parse", ("parse", NO_WRITE), common, said_when_skipped=False))
        command = [RETRY, "--state", str(self.settings.run_dir / "retry")]
        if self.settings.threads:
            command += ["--threads", str(self.settings.threads)]
        # retry takes no --target: dbt reuses the earlier invocation's.
        common = tuple(invocation.common_args(target=False))
        retry = Step(RETRY, "dbt", tuple(command), common, node_phase=True, has_nodes=True)
        return [*steps, retry]

    def before_step(self, step: Step, context: Context) -> None:
        """Before dbt retry: the code and the values the earlier run was built with."""
        if step.name == RETRY:
            self._check_unchanged(context.session)
            self._check_inputs(context.session)

    def _check_unchanged(self, session: DbtSession) -> None:
        """dbt's own state:modified+ against the earlier run's manifest: a node it built
        that has changed since would stay old in the warehouse while the state says new."""
        assert self.retry_dir is not None  # noqa: S101 (has_work)
        command = ["build", "--select", "state:modified+", "--state", str(self.retry_dir / "built")]
        modified = session.selected(command)
        if modified is None:
            raise ConfigError(f"dbt could not compare the project with the run it retries: {AGAIN}")
        changed = ledger.changed_since(self.previous_id, modified, self.retried)
        if changed is not None:
            raise ConfigError(changed)

    def _check_inputs(self, session: DbtSession) -> None:
        """The vars and environment variables the earlier run was built with are this
        retry's (those it read, and those this parse reads)."""
        manifest, workspace = session.manifest, self.workspace
        if self.built_with is None or manifest is None or workspace is None:
            return
        read = env_var_names(workspace.project.source_dir, manifest.env_vars)
        now = workspace.inputs(set(self.built_with.env_vars) | set(read))
        different = ledger.other_values(self.previous_id, self.built_with, now)
        if different is not None:
            raise ConfigError(different)

    def clean_up(self) -> None:
        if self.recreated_state is not None:
            shutil.rmtree(self.recreated_state, ignore_errors=True)
