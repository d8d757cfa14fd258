"""Phases: dbt's commands, run in this process through `dbtRunner`.

The project is parsed once, after `deps` and `debug`, and that manifest is handed to
every later phase, where the shell-script way re-imports dbt and re-parses the
project for each command. Each phase becomes a `PhaseResult` (status, timing, dbt
arguments, node counts, dbt's own error) and its nodes `NodeResult`s in the report.
A phase a signal or the timeout cuts short still reports every node that finished,
and leaves run results that `dbt retry` can complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrypoint.attribution import owner_of, tag_query_groups
from entrypoint.errors import ConfigError, ExitCode, dbt_error
from entrypoint.fresh import (
    NODES,
    SOURCES,
    compare,
    model_seconds,
    read_json,
    too_soon,
    upstream_sources,
)
from entrypoint.lint import (
    github_annotations,
    lint,
    project_files,
    repository_prefix,
    runner_config,
)
from entrypoint.nodes import NodeRecorder, clean, warehouse_figures
from entrypoint.pr import check_nodes
from entrypoint.report import (
    FreshInfo,
    NodeResult,
    PhaseResult,
    PhaseStatus,
    RunReport,
    now,
    outcome_of,
)
from entrypoint.selection import (
    EXECUTED_TYPES,
    NOT_RUN,
    complete_run_results,
    invocation_args,
    selected_nodes,
)
from entrypoint.settings import Job, Phase, Settings
from entrypoint.state import Baseline
from entrypoint.workspace import DbtInvocation, Workspace

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest

log = logging.getLogger(__name__)

# Phases that work on the parsed project (everything but deps and debug).
NEEDS_MANIFEST = {
    Phase.LINT,
    Phase.SEED,
    Phase.SNAPSHOT,
    Phase.RUN,
    Phase.TEST,
    Phase.BUILD,
    Phase.FRESHNESS,
    Phase.DOCS,
}
# Phases whose run_results.json is the job's own (what `dbt retry` reads), last wins.
NODE_PHASES = (Phase.SEED, Phase.SNAPSHOT, Phase.RUN, Phase.TEST, Phase.BUILD)
PARSE = "parse"
RETRY = "retry"
# dbt writes manifest.json after every command (seconds on a large project): only the
# job's last dbt phase does; the others get --no-write-json and the runner writes their
# run_results.json (or sources.json) from dbt's own result object.
NO_WRITE = "--no-write-json"
# A failed node's compiled SQL in the report (the run page folds it): enough to read.
COMPILED_SQL_LIMIT = 20_000


# The dbt commands that write manifest.json when they finish (docs generate writes it
# only when it compiles, and reads it for its static page).
MANIFEST_WRITERS = (*NODE_PHASES, Phase.FRESHNESS)


def writes_manifest(phase: Phase, phases: list[Phase]) -> bool:
    """Whether `phase` is the job's last dbt phase that writes manifest.json."""
    writers = [p for p in phases if p in MANIFEST_WRITERS]
    return bool(writers) and phase is writers[-1]


def skips_manifest(phase: Phase, phases: list[Phase]) -> bool:
    """Whether `phase` runs with --no-write-json: a writer that is not the last one."""
    return phase in MANIFEST_WRITERS and not writes_manifest(phase, phases)


def _selection(settings: Settings, baseline: Baseline | None) -> list[str]:
    if baseline is not None:
        # Slim: what changed since the state (plus any extra selection, and what runs
        # since the state rebuilt), deferring unselected refs to the state's relations;
        # fresh: new data too.
        changed = settings.slim.select.split()
        if settings.job is Job.FRESH:
            changed = ["source_status:fresher+", "state:modified+"]
        select = changed + (settings.select or "").split() + list(baseline.unsettled)
        args = ["--select", *select]
        if settings.exclude:
            args += ["--exclude", *settings.exclude.split()]
        args += ["--state", str(baseline.dir)]
        if settings.slim.defer:
            args.append("--defer")
        if settings.slim.favor_state:
            args.append("--favor-state")
        return args
    args = []
    if settings.selector:
        args += ["--selector", settings.selector]
    if settings.select:
        args += ["--select", *settings.select.split()]
    if settings.exclude:
        args += ["--exclude", *settings.exclude.split()]
    return args


def _lint_scope(baseline: Baseline | None) -> list[str]:
    """What the lint phase lints: the changed nodes' files in a slim job, else all."""
    if baseline is not None:
        return ["--select", "state:modified", "--state", str(baseline.dir)]
    return ["--select", "the project's models and snapshots"]


def phase_command(
    phase: Phase,
    settings: Settings,
    phases: list[Phase],
    compiled: bool = False,
    baseline: Baseline | None = None,
) -> list[str]:
    """The dbt command (without the shared arguments) a phase runs.

    `compiled`: an earlier phase of this process compiled every node into the shared
    manifest, so docs need not compile the project again. `baseline`: a slim job's
    state (its manifest.json), for node phases to select changes and defer.
    """
    threads = ["--threads", str(settings.threads)] if settings.threads else []
    fail_fast = ["--fail-fast"] if settings.fail_fast else []
    full_refresh = ["--full-refresh"] if settings.full_refresh else []
    select = _selection(settings, baseline)
    commands = {
        Phase.DEPS: ["deps"],
        Phase.DEBUG: ["debug"],
        # Not a dbt command: SQLFluff's dbt templater on the run's manifest (lint.py).
        Phase.LINT: ["sqlfluff", "lint", "--templater", "dbt", *_lint_scope(baseline)],
        Phase.SEED: ["seed", *select, *threads, *full_refresh, *fail_fast],
        Phase.SNAPSHOT: ["snapshot", *select, *threads, *fail_fast],
        Phase.RUN: ["run", *select, *threads, *full_refresh, *fail_fast],
        Phase.TEST: ["test", *select, *threads, *fail_fast],
        # A seed phase before build has loaded the seeds already: not twice.
        Phase.BUILD: [
            "build",
            *select,
            *(["--exclude-resource-type", "seed"] if Phase.SEED in phases else []),
            *threads,
            *full_refresh,
            *fail_fast,
        ],
        Phase.FRESHNESS: ["source", "freshness", *_selection(settings, None), *threads],
        # The whole project, whatever the selection: these become the published docs.
        Phase.DOCS: [
            "docs",
            "generate",
            "--static",
            *(["--no-compile"] if compiled else []),
            *threads,
        ],
    }
    return commands[phase]


def plan(
    settings: Settings, invocation: DbtInvocation, baseline: Baseline | None = None
) -> list[tuple[str, list[str]]]:
    """Every dbt command a run would make, in order (parse included)."""
    phases = settings.job_phases
    commands: list[tuple[str, list[str]]] = []
    parsed = False
    for phase in phases:
        if phase in NEEDS_MANIFEST and not parsed:
            commands.append((PARSE, ["parse", NO_WRITE, *invocation.common_args()]))
            parsed = True
        # Shown as run will make it when the build succeeds.
        compiled = settings.compiles_whole_project
        command = phase_command(phase, settings, phases, compiled, baseline)
        if (
            phase in NEEDS_MANIFEST
            and phase is not Phase.LINT
            and not writes_manifest(phase, phases)
        ):
            command = [*command, NO_WRITE]
        commands.append((phase.value, [*command, *invocation.common_args()]))
    return commands


def _status_of(value: Any) -> str:
    return str(getattr(value, "value", value))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _timing(item: Any) -> tuple[datetime | None, datetime | None]:
    """A dbt result's start and end, from its compile and execute timings."""
    timings = getattr(item, "timing", None) or []
    starts = [_utc(t.started_at) for t in timings if t.started_at]
    ends = [_utc(t.completed_at) for t in timings if t.completed_at]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _compiled_sql(node: Any) -> str | None:
    sql = getattr(node, "compiled_code", None)
    return sql[:COMPILED_SQL_LIMIT] if isinstance(sql, str) and sql.strip() else None


def node_results(phase: str, result: Any) -> list[NodeResult]:
    """NodeResults from a dbt result (run, test, build, seed, snapshot or freshness)."""
    nodes: list[NodeResult] = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        if node is None:
            continue
        status = _status_of(item.status)
        message = getattr(item, "message", None)
        started_at, finished_at = _timing(item)
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=_status_of(node.resource_type),
                phase=phase,
                status=status,
                outcome=outcome_of(status),
                execution_time_s=round(float(getattr(item, "execution_time", 0) or 0), 3),
                message=clean(str(message)) if message else None,
                failures=getattr(item, "failures", None),
                relation=getattr(node, "relation_name", None),
                path=getattr(node, "original_file_path", None),
                started_at=started_at,
                finished_at=finished_at,
                thread=getattr(item, "thread_id", None) or None,
                **warehouse_figures(getattr(item, "adapter_response", None)),
                compiled_sql=_compiled_sql(node) if outcome_of(status) == "failed" else None,
            )
        )
    return nodes


def _exception_message(exc: BaseException) -> str:
    return clean(str(exc).strip() or type(exc).__name__)


class Interrupted(KeyboardInterrupt):
    """A phase was stopped by SIGINT, SIGTERM or the run's timeout (a KeyboardInterrupt,
    so every stage lets it through to the run's guard)."""


@dataclass
class _Clock:
    started_at: datetime = field(default_factory=now)
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 3)


class PhaseRunner:
    """Runs a job's phases with one parse, recording each into the report."""

    def __init__(
        self,
        settings: Settings,
        workspace: Workspace,
        report: RunReport,
        baseline: Baseline | None = None,
    ) -> None:
        self.settings = settings
        self.project = workspace.project
        self.invocation = workspace.invocation()
        self.target_path = workspace.target_path
        self.report = report
        self.baseline = baseline
        self.manifest: Manifest | None = None
        self.phases = settings.job_phases
        self.recorder = NodeRecorder(self._path_of)
        self.namespace = workspace.profile.namespace
        self.manifest_written = False  # by dbt, in the job's last dbt phase
        self.adapter = workspace.profile.adapter
        # Why the run was stopped, asked when it happens (a signal, or the timeout).
        self.stop_reason: Callable[[], str] = lambda: "interrupted by a signal"

    def _path_of(self, unique_id: str) -> str | None:
        node = self.manifest.nodes.get(unique_id) if self.manifest else None
        return getattr(node, "original_file_path", None)

    def _invoke(self, args: list[str]) -> dbtRunnerResult:
        from dbt.cli.main import dbtRunner

        return dbtRunner(manifest=self.manifest, callbacks=[self.recorder]).invoke(args)

    def _record(
        self,
        name: str,
        status: PhaseStatus,
        clock: _Clock | None = None,
        args: list[str] | None = None,
        message: str | None = None,
        nodes: Iterable[NodeResult] = (),
        advisory: bool = False,
        complete: bool = True,
    ) -> PhaseResult:
        nodes = list(nodes)
        for node in nodes:
            node.owner = node.owner or owner_of(self.manifest, node.unique_id)
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
        error = dbt_error(name, message or f"dbt {name} failed") if status == "error" else None
        if error is not None and (not advisory or error.exit_code == ExitCode.INFRA):
            # dbt's own words, where every reader of the report (and stderr) looks first.
            self.report.add_error(name, error.message, error.exit_code)
            log.error("%s", error.message)
        if advisory and status in ("failed", "error"):
            self.report.warnings.append(f"{name} {status} (advisory: the job goes on): {message}")
        level = logging.INFO if status in ("success", "skipped") else logging.WARNING
        note = f" ({message})" if message else ""
        log.log(level, "phase %s: %s in %.1f s%s", name, status, phase.duration_s, note)
        return phase

    def run_phase(
        self,
        name: str,
        command: list[str],
        advisory: bool = False,
        has_nodes: bool = False,
        common: list[str] | None = None,
    ) -> PhaseResult:
        """One dbt command as a phase of the report; raise Interrupted when stopped.
        `common`: the shared arguments, when not the invocation's usual ones."""
        common = self.invocation.common_args() if common is None else common
        args = [*command, *common]
        clock = _Clock()
        log.info("phase %s: dbt %s", name, " ".join(args))
        self.recorder.begin(name)
        result = self._invoke(args)
        if isinstance(result.exception, KeyboardInterrupt):
            self._stopped(name, command, args, clock)
            raise Interrupted(name)
        self._unmatched(name)
        outcome: Any = result.result
        if NO_WRITE in command and hasattr(outcome, "write"):
            # What dbt would have written, without its manifest.json; a `dbt retry` of
            # these results writes its own.
            written = "sources.json" if name == "freshness" else "run_results.json"
            if isinstance(getattr(outcome, "args", None), dict):
                outcome.args["write_json"] = True
            outcome.write(str(self.target_path / written))
        nodes = node_results(name, result.result)
        if result.exception is not None:
            message = self.recorder.first_error() or _exception_message(result.exception)
            return self._record(name, "error", clock, args, message, nodes, advisory)
        if result.success:
            return self._record(name, "success", clock, args, None, nodes, advisory)
        if has_nodes and nodes:
            failed = sum(1 for node in nodes if node.outcome == "failed")
            return self._record(
                name, "failed", clock, args, f"{failed} node(s) failed", nodes, advisory
            )
        # debug, deps, docs: no node results, so dbt could not do what was asked.
        message = self.recorder.first_error() or f"dbt {name} did not succeed"
        return self._record(name, "error", clock, args, message, nodes, advisory)

    def _unmatched(self, phase: str) -> None:
        """The user's selection criteria dbt found no node for in this phase: a warning
        (dbt only logs it), or, with DBT_RUNNER_UNMATCHED_SELECTION=fail, an error."""
        given = {*(self.settings.select or "").split(), *(self.settings.exclude or "").split()}
        for spec in dict.fromkeys(self.recorder.unmatched):
            if spec not in given and not self.settings.selector:
                continue  # the runner's own (state:modified+ with nothing changed)
            message = f"the selection '{spec}' matches no node ({phase}): nothing was built for it"
            if message in self.report.warnings:
                continue
            self.report.warnings.append(message)
            log.warning("%s", message)
            if self.settings.unmatched_selection == "fail":
                fix = f"{message}; fix the selection (DBT_RUNNER_UNMATCHED_SELECTION=fail)"
                self.report.add_error("selection", fix, ExitCode.CONFIG)
                log.error("%s", fix)

    def _stopped(self, name: str, command: list[str], args: list[str], clock: _Clock) -> None:
        """Record a phase a stop cut short: every node that finished, and every node it
        had selected but not finished, as skipped in the report and the run results."""
        nodes = list(self.recorder.nodes)
        complete = command[0] != RETRY  # what dbt retry had selected is its own business
        if self.manifest is not None and command[0] in EXECUTED_TYPES:
            dbt_args = invocation_args()  # before dbt ls replaces them
            selected = selected_nodes(self._invoke, command, self.invocation.common_args())
            complete = selected is not None
            pending = (selected or set()) - {node.unique_id for node in nodes}
            nodes += [self._not_run(unique_id, name) for unique_id in sorted(pending)]
            outcomes = {node.unique_id: (node.status, node.message) for node in nodes}
            path = self.target_path / "run_results.json"
            complete_run_results(path, outcomes, self.recorder.run_results_written, dbt_args)
        self._record(name, "interrupted", clock, args, self.stop_reason(), nodes, complete=complete)

    def _not_run(self, unique_id: str, phase: str) -> NodeResult:
        manifest: Any = self.manifest
        node: Any = manifest.nodes.get(unique_id) or manifest.unit_tests.get(unique_id)
        return NodeResult(
            unique_id=unique_id,
            name=getattr(node, "name", unique_id.rsplit(".", 1)[-1]),
            resource_type=_status_of(getattr(node, "resource_type", unique_id.split(".", 1)[0])),
            phase=phase,
            status="skipped",
            outcome="skipped",
            message=NOT_RUN,
            relation=getattr(node, "relation_name", None),
            path=getattr(node, "original_file_path", None),
        )

    def _keep_run_results(self, phase: str) -> None:
        """Each phase overwrites run_results.json: keep a copy per phase."""
        source = self.target_path / "run_results.json"
        if source.is_file():
            copy = self.target_path / "phases" / phase / "run_results.json"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)

    def _restore_job_run_results(self) -> None:
        """Leave the job's node run results (not docs') as run_results.json: those of
        the last node phase that ran."""
        ran = [p.name for p in self.report.phases if p.status != "skipped"]
        for name in reversed(ran):
            copy = self.target_path / "phases" / name / "run_results.json"
            if name in {*(p.value for p in NODE_PHASES), RETRY} and copy.is_file():
                shutil.copyfile(copy, self.target_path / "run_results.json")
                return

    def parse(self) -> bool:
        args = ["parse", NO_WRITE, *self.invocation.common_args()]
        clock = _Clock()
        self.recorder.begin(PARSE)
        result = self._invoke(args)
        if isinstance(result.exception, KeyboardInterrupt):
            self._record(PARSE, "interrupted", clock, args, self.stop_reason())
            raise Interrupted(PARSE)
        manifest = result.result
        if result.success and manifest is not None:
            self.manifest = manifest  # type: ignore[assignment]
            if self.adapter == "redshift":
                tag_query_groups(self.manifest)  # type: ignore[arg-type]
            self._record(PARSE, "success", clock, args, f"{len(manifest.nodes)} nodes")  # type: ignore[union-attr]
            return True
        message = self.recorder.first_error() or (
            _exception_message(result.exception) if result.exception else "dbt parse failed"
        )
        self._record(PARSE, "error", clock, args, message)
        return False

    def run(self) -> None:
        """Run every phase; raise Interrupted when a signal or the timeout stops it."""
        self.run_phases(self.phases)

    def run_phases(self, phases: list[Phase]) -> None:
        advisory = set(self.settings.advisory_phases)
        blocked: str | None = None  # why strict phases no longer run
        stopped: str | None = None  # why nothing runs any more
        remaining = list(phases)
        compiled = False  # every node compiled into the manifest by an earlier phase
        guarded = False  # the pull-request guard ran
        try:
            while remaining:
                phase = remaining.pop(0)
                is_advisory = phase in advisory
                skip = stopped or (blocked if not is_advisory else None) or self._skip(phase)
                if skip:
                    self._record(phase.value, "skipped", message=skip)
                    continue
                if phase in NEEDS_MANIFEST and self.manifest is None and not self.parse():
                    stopped = "skipped: the project did not parse"
                    self._record(phase.value, "skipped", message=stopped)
                    continue
                if phase in NODE_PHASES and not guarded:
                    guarded = True
                    if not self._guard(compiled):
                        stopped = "skipped: a node would write outside the pull request's schemas"
                        self._record(phase.value, "skipped", message=stopped)
                        continue
                command = phase_command(phase, self.settings, self.phases, compiled, self.baseline)
                if phase is Phase.BUILD and self.settings.job is Job.FRESH:
                    command = self._fresh_build(command)
                if phase is Phase.DOCS:
                    self._write_manifest()  # docs read it (a writer may have failed)
                if phase is Phase.LINT:
                    result = self._lint(command, is_advisory)
                else:
                    result = self._run_job_phase(phase, command, is_advisory)
                if phase is Phase.BUILD and result.status == "success":
                    compiled = self.settings.compiles_whole_project
                if is_advisory or result.status == "success":
                    continue
                if result.status == "error":
                    stopped = f"skipped: {phase.value} could not run"
                else:
                    blocked = f"skipped: {phase.value} failed"
        except KeyboardInterrupt:
            for phase in remaining:
                self._record(phase.value, "skipped", message="skipped: the run was stopped")
            raise
        finally:
            self._restore_job_run_results()
            self._write_manifest()

    def _guard(self, compiled: bool) -> bool:
        """A pull request's run writes only to its own schemas: every node the job's node
        phases select is checked after the parse and before any of them runs."""
        if self.namespace is None:
            return True
        common = self.invocation.common_args()
        selected: set[str] = set()
        for phase in (p for p in self.phases if p in NODE_PHASES):
            command = phase_command(phase, self.settings, self.phases, compiled, self.baseline)
            selected |= selected_nodes(self._invoke, command, common) or set()
        try:
            schemas = check_nodes(self.manifest, selected, self.namespace)
        except ConfigError as exc:
            self.report.add_error("pr-guard", exc.message, exc.exit_code)
            log.error("%s", exc.message)
            return False
        if self.report.pr is not None:
            self.report.pr.schemas = schemas
        return True

    def _lint(self, command: list[str], advisory: bool) -> PhaseResult:
        """The lint phase: SQLFluff on the files in scope, with this run's manifest."""
        clock = _Clock()
        log.info("phase lint: %s", " ".join(command))
        selected = None
        if self.baseline is not None:  # a slim job: only what changed
            changed = ["build", "--select", "state:modified", "--state", str(self.baseline.dir)]
            selected = selected_nodes(self._invoke, changed, self.invocation.common_args())
        try:
            files = project_files(self.manifest, self.project.name, selected)
            config = runner_config(
                self.settings.run_dir / "lint",
                self.project.dir,
                self.invocation.profiles_dir,
                self.invocation.target,
                self.adapter,
            )
            info = lint(self.manifest, files, self.project.dir, config, self.adapter)
        except Exception as exc:  # SQLFluff's own errors: a config it cannot read, ...
            return self._record("lint", "error", clock, command, clean(str(exc)), (), advisory)
        info.prefix = repository_prefix(self.project.source_dir)
        self.report.lint = info
        if os.environ.get("GITHUB_ACTIONS") == "true" and info.findings:
            print("\n".join(github_annotations(info)), flush=True)
        found = f"{len(info.findings)} finding(s) in {len(info.files)} file(s) ({info.config})"
        status: PhaseStatus = "failed" if info.findings else "success"
        return self._record("lint", status, clock, command, found, (), advisory)

    def _fresh_build(self, command: list[str]) -> list[str]:
        """A fresh job's build: what source_status:fresher+ and state:modified+ select,
        with every source dbt cannot judge counted as new, less the models waiting
        under their build_after."""
        current = read_json(self.target_path / SOURCES)
        previous = read_json(self.baseline.dir / SOURCES) if self.baseline else None
        failed = {
            node.unique_id
            for node in self.report.nodes
            if node.phase == Phase.FRESHNESS.value and node.status == "runtime error"
        }
        changes = compare(self.manifest, self.project.name, previous, current, failed)
        info = self.report.fresh = FreshInfo(new_data=changes.new_data, assumed=changes.assumed)
        for source, why in changes.assumed.items():
            log.info("fresh: %s counts as new data: %s", source, why)
        if self.baseline is None:
            return command  # everything is built (report.state says why)
        extra = changes.selectors()
        command = [*command, "--select", *extra] if extra else command
        waiting = self._waiting(command, self.baseline.dir)
        if waiting:
            info.too_soon, info.held_back = waiting, upstream_sources(self.manifest, list(waiting))
            names = sorted(
                ".".join(self.manifest.nodes[uid].fqn) for uid in waiting if self.manifest
            )
            command = [*command, "--exclude", *names]
        return command

    def _waiting(self, command: list[str], state_dir: Path) -> dict[str, str]:
        """Models that build_after leaves alone: selected for new data only, built lately."""
        default = self.settings.fresh.build_after
        models = self.manifest.nodes.values() if self.manifest is not None else []
        declared = any((node.meta or {}).get("build_after") for node in models)
        if not default and not declared:
            return {}  # no lag tolerance anywhere: no need to ask dbt what is selected
        nodes = read_json(state_dir / NODES) or {}
        common = self.invocation.common_args()
        candidates = selected_nodes(self._invoke, command, common) or set()
        unsettled = list(self.baseline.unsettled) if self.baseline else []
        changed_command = ["build", "--select", "state:modified+", *unsettled]
        changed_command += ["--state", str(state_dir)]
        changed = selected_nodes(self._invoke, changed_command, common) or set()
        return too_soon(self.manifest, candidates, changed, nodes, default, now())

    def fresh_summary(self) -> None:
        """A fresh job's counts: models built and skipped, and the model-seconds skipped."""
        info = self.report.fresh
        if info is None or self.manifest is None:
            return
        models = {
            uid
            for uid, node in self.manifest.nodes.items()
            if _status_of(node.resource_type) == "model" and node.package_name == self.project.name
        }
        built = {
            n.unique_id for n in self.report.nodes if n.phase == "build" and n.outcome != "skipped"
        }
        skipped = sorted(models - built)
        info.models_built, info.models_skipped = len(models & built), len(skipped)
        nodes = read_json(self.baseline.dir / NODES) if self.baseline else None
        info.model_seconds_skipped = model_seconds(nodes or {}, skipped)

    def _skip(self, phase: Phase) -> str | None:
        if phase is Phase.DEPS and not self.project.has_packages:
            return "no packages.yml or dependencies.yml"
        return None

    def _run_job_phase(self, phase: Phase, command: list[str], advisory: bool) -> PhaseResult:
        has_nodes = phase in NODE_PHASES or phase is Phase.FRESHNESS
        skip = skips_manifest(phase, self.phases)
        try:
            result = self.run_phase(
                phase.value, [*command, NO_WRITE] if skip else command, advisory, has_nodes
            )
            if writes_manifest(phase, self.phases):
                self.manifest_written = True
            return result
        finally:
            if phase in NODE_PHASES or phase is Phase.DOCS:
                self._keep_run_results(phase.value)

    def _write_manifest(self) -> None:
        """manifest.json once, when no phase of the job wrote it (a run stopped or
        failed before its last dbt phase): the artifacts and a retry still have it."""
        if self.manifest is None or self.manifest_written:
            return
        from dbt.parser.manifest import write_manifest

        self.target_path.mkdir(parents=True, exist_ok=True)
        write_manifest(self.manifest, str(self.target_path))
        self.manifest_written = True

    def prepare_retry(self) -> bool:
        """What a retry needs before dbt retry: packages (a fresh container has none) and
        the project parsed, to compare with the run it repairs. False when either failed
        (recorded as a phase)."""
        deps = self.project.has_packages and self.run_phase(Phase.DEPS.value, ["deps"])
        if deps and deps.status != "success":
            return False
        return self.parse()

    def modified_since(self, manifest_dir: Path) -> set[str] | None:
        """The executed nodes whose code or config changed since the manifest in
        `manifest_dir`, and their children (dbt's own state:modified+); None when dbt
        cannot say."""
        command = ["build", "--select", "state:modified+", "--state", str(manifest_dir)]
        return selected_nodes(self._invoke, command, self.invocation.common_args())

    def retry(self, previous: Path) -> None:
        """`dbt retry` of the failed and skipped nodes in `previous`/run_results.json."""
        try:
            command = [RETRY, "--state", str(previous)]
            if self.settings.threads:
                command += ["--threads", str(self.settings.threads)]
            # retry takes no --target: dbt reuses the earlier invocation's.
            common = self.invocation.common_args(target=False)
            try:
                self.run_phase(RETRY, command, has_nodes=True, common=common)
            finally:
                self._keep_run_results(RETRY)
        finally:
            self._restore_job_run_results()

    def built_selectors(self) -> list[str]:
        """The relations this run built (or began to), as dbt selectors (fqn:...)."""
        if self.manifest is None:
            return []
        phases = {*(phase.value for phase in NODE_PHASES), RETRY}
        selectors = set()
        for result in self.report.nodes:
            node = self.manifest.nodes.get(result.unique_id)
            kind = result.resource_type
            if node is None or result.phase not in phases or result.outcome == "skipped":
                continue
            if kind in ("model", "seed", "snapshot"):
                selectors.add("fqn:" + ".".join(node.fqn))
        return sorted(selectors)

    def slim_nodes(self) -> dict[str, list[str]]:
        """What a slim build selected, built and skipped, and which parents it deferred."""
        node_phases = {phase.value for phase in NODE_PHASES}
        results = [node for node in self.report.nodes if node.phase in node_phases]
        selected = sorted({node.unique_id for node in results})
        built = sorted({n.unique_id for n in results if n.outcome != "skipped"})
        skipped = sorted({n.unique_id for n in results if n.outcome == "skipped"})
        deferred: set[str] = set()
        if self.manifest is not None:
            chosen = set(selected)
            for unique_id in chosen:
                node = self.manifest.nodes.get(unique_id)
                for parent in getattr(getattr(node, "depends_on", None), "nodes", []):
                    kind = parent.split(".", 1)[0]
                    if parent not in chosen and kind in ("model", "seed", "snapshot"):
                        deferred.add(parent)
        return {
            "selected": selected,
            "built": built,
            "skipped": skipped,
            "deferred": sorted(deferred),
        }
