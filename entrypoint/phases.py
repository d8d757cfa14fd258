"""Phases: dbt's commands, run in this process through `dbtRunner`.

The project is parsed once, after `deps` and `debug`, and that manifest is handed to
every later phase, where the shell-script way re-imports dbt and re-parses the
project for each command. Each phase becomes a `PhaseResult` (status, timing, dbt
arguments, node counts) and its nodes `NodeResult`s in the run report.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrypoint.project import Project
from entrypoint.report import NodeResult, PhaseResult, PhaseStatus, RunReport, now, outcome_of
from entrypoint.settings import Job, Phase, Settings

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest

log = logging.getLogger(__name__)

# Phases that work on the parsed project (everything but deps and debug).
NEEDS_MANIFEST = {
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


@dataclass
class DbtInvocation:
    """The arguments every dbt command of a run shares."""

    project_dir: Path
    profiles_dir: Path
    target: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)

    def common_args(self, target: bool = True) -> list[str]:
        import json

        args = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        if self.target and target:
            args += ["--target", self.target]
        if self.vars:
            args += ["--vars", json.dumps(self.vars, sort_keys=True)]
        return args


def _selection(settings: Settings, state_dir: Path | None) -> list[str]:
    if state_dir is not None:
        # Slim: what changed since the state (plus any extra selection), deferring
        # unselected refs to the state's relations.
        select = settings.slim.select.split() + (settings.select or "").split()
        args = ["--select", *select]
        if settings.exclude:
            args += ["--exclude", *settings.exclude.split()]
        args += ["--state", str(state_dir)]
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


def compiles_whole_project(settings: Settings) -> bool:
    """Whether a successful build of this job compiles every node of the project."""
    unselected = not (settings.select or settings.exclude or settings.selector)
    return Phase.BUILD in settings.job_phases and unselected and settings.job is not Job.SLIM


def phase_command(
    phase: Phase,
    settings: Settings,
    phases: list[Phase],
    compiled: bool = False,
    state_dir: Path | None = None,
) -> list[str]:
    """The dbt command (without the shared arguments) a phase runs.

    `compiled`: an earlier phase of this process compiled every node into the shared
    manifest, so docs need not compile the project again. `state_dir`: a slim job's
    state (its manifest.json), for node phases to select changes and defer.
    """
    threads = ["--threads", str(settings.threads)] if settings.threads else []
    fail_fast = ["--fail-fast"] if settings.fail_fast else []
    full_refresh = ["--full-refresh"] if settings.full_refresh else []
    select = _selection(settings, state_dir)
    plain = _selection(settings, None)
    if phase is Phase.DEPS:
        return ["deps"]
    if phase is Phase.DEBUG:
        return ["debug"]
    if phase is Phase.SEED:
        return ["seed", *select, *threads, *full_refresh, *fail_fast]
    if phase is Phase.SNAPSHOT:
        return ["snapshot", *select, *threads, *fail_fast]
    if phase is Phase.RUN:
        return ["run", *select, *threads, *full_refresh, *fail_fast]
    if phase is Phase.TEST:
        return ["test", *select, *threads, *fail_fast]
    if phase is Phase.BUILD:
        # A seed phase before build has loaded the seeds already: do not load them twice.
        skip_seeds = ["--exclude-resource-type", "seed"] if Phase.SEED in phases else []
        return ["build", *select, *skip_seeds, *threads, *full_refresh, *fail_fast]
    if phase is Phase.FRESHNESS:
        return ["source", "freshness", *plain, *threads]
    if phase is Phase.DOCS:
        # The whole project, whatever the selection: these become the published docs.
        no_compile = ["--no-compile"] if compiled else []
        return ["docs", "generate", "--static", *no_compile, *threads]
    raise AssertionError(phase)


def plan(
    settings: Settings, invocation: DbtInvocation, state_dir: Path | None = None
) -> list[tuple[str, list[str]]]:
    """Every dbt command a run would make, in order (parse included)."""
    phases = settings.job_phases
    commands: list[tuple[str, list[str]]] = []
    parsed = False
    for phase in phases:
        if phase in NEEDS_MANIFEST and not parsed:
            commands.append((PARSE, ["parse", *invocation.common_args()]))
            parsed = True
        # Shown as run will make it when the build succeeds.
        compiled = compiles_whole_project(settings)
        command = phase_command(phase, settings, phases, compiled, state_dir)
        commands.append((phase.value, [*command, *invocation.common_args()]))
    return commands


def _status_of(value: Any) -> str:
    return str(getattr(value, "value", value))


def node_results(phase: str, result: Any) -> list[NodeResult]:
    """NodeResults from a dbt result (run, test, build, seed, snapshot or freshness)."""
    nodes: list[NodeResult] = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        if node is None:
            continue
        status = _status_of(item.status)
        message = getattr(item, "message", None)
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=_status_of(node.resource_type),
                phase=phase,
                status=status,
                outcome=outcome_of(status),
                execution_time_s=round(float(getattr(item, "execution_time", 0) or 0), 3),
                message=str(message) if message else None,
                failures=getattr(item, "failures", None),
                relation=getattr(node, "relation_name", None),
                path=getattr(node, "original_file_path", None),
            )
        )
    return nodes


def _exception_message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:2000]


class Interrupted(Exception):
    """A phase was interrupted by SIGINT or SIGTERM."""


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
        project: Project,
        invocation: DbtInvocation,
        target_path: Path,
        report: RunReport,
        state_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.project = project
        self.invocation = invocation
        self.target_path = target_path
        self.report = report
        self.state_dir = state_dir
        self.manifest: Manifest | None = None
        self.phases = settings.job_phases

    def _invoke(self, args: list[str]) -> dbtRunnerResult:
        from dbt.cli.main import dbtRunner

        return dbtRunner(manifest=self.manifest).invoke(args)

    def _record(
        self,
        name: str,
        status: PhaseStatus,
        clock: _Clock | None = None,
        args: list[str] | None = None,
        message: str | None = None,
        nodes: Iterable[NodeResult] = (),
        advisory: bool = False,
    ) -> PhaseResult:
        nodes = list(nodes)
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
        )
        self.report.phases.append(phase)
        self.report.nodes.extend(nodes)
        if advisory and status in ("failed", "error"):
            self.report.warnings.append(f"{name} {status} (advisory: the job goes on): {message}")
        level = logging.INFO if status in ("success", "skipped") else logging.WARNING
        note = f" ({message})" if message else ""
        log.log(level, "phase %s: %s in %.1f s%s", name, status, phase.duration_s, note)
        return phase

    def _run(self, name: str, args: list[str], advisory: bool, has_nodes: bool) -> PhaseResult:
        clock = _Clock()
        log.info("phase %s: dbt %s", name, " ".join(args))
        result = self._invoke(args)
        nodes = node_results(name, result.result)
        if isinstance(result.exception, KeyboardInterrupt):
            self._record(name, "interrupted", clock, args, "interrupted by a signal", nodes)
            raise Interrupted(name)
        if result.exception is not None:
            message = _exception_message(result.exception)
            return self._record(name, "error", clock, args, message, nodes, advisory)
        if result.success:
            return self._record(name, "success", clock, args, None, nodes, advisory)
        if has_nodes and nodes:
            failed = sum(1 for node in nodes if node.outcome == "failed")
            return self._record(
                name, "failed", clock, args, f"{failed} node(s) failed", nodes, advisory
            )
        # debug, deps, docs: no node results, so dbt could not do what was asked.
        message = f"dbt {name} did not succeed; see the log above"
        return self._record(name, "error", clock, args, message, nodes, advisory)

    def _keep_run_results(self, phase: Phase) -> None:
        """Each phase overwrites run_results.json: keep a copy per phase."""
        source = self.target_path / "run_results.json"
        if source.is_file():
            copy = self.target_path / "phases" / phase.value / "run_results.json"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)

    def _restore_job_run_results(self) -> None:
        """Leave the job's node run results (not docs') as run_results.json."""
        for phase in reversed(NODE_PHASES):
            copy = self.target_path / "phases" / phase.value / "run_results.json"
            if phase in self.phases and copy.is_file():
                shutil.copyfile(copy, self.target_path / "run_results.json")
                return

    def _parse(self) -> bool:
        args = ["parse", *self.invocation.common_args()]
        clock = _Clock()
        result = self._invoke(args)
        if isinstance(result.exception, KeyboardInterrupt):
            self._record(PARSE, "interrupted", clock, args, "interrupted by a signal")
            raise Interrupted(PARSE)
        manifest = result.result
        if result.success and manifest is not None:
            self.manifest = manifest  # type: ignore[assignment]
            self._record(PARSE, "success", clock, args, f"{len(manifest.nodes)} nodes")  # type: ignore[union-attr]
            return True
        message = _exception_message(result.exception) if result.exception else "dbt parse failed"
        self._record(PARSE, "error", clock, args, message)
        return False

    def run(self) -> None:
        """Run every phase; raise Interrupted when a signal stops the run."""
        advisory = set(self.settings.advisory_phases)
        blocked: str | None = None  # why strict phases no longer run
        stopped: str | None = None  # why nothing runs any more
        common = self.invocation.common_args()
        remaining = list(self.phases)
        compiled = False  # every node compiled into the manifest by an earlier phase
        try:
            while remaining:
                phase = remaining.pop(0)
                is_advisory = phase in advisory
                if stopped or (blocked and not is_advisory):
                    self._record(phase.value, "skipped", message=stopped or blocked)
                    continue
                if phase is Phase.DEPS and not self.project.has_packages:
                    self._record(
                        phase.value, "skipped", message="no packages.yml or dependencies.yml"
                    )
                    continue
                if phase in NEEDS_MANIFEST and self.manifest is None and not self._parse():
                    stopped = "skipped: the project did not parse"
                    self._record(phase.value, "skipped", message=stopped)
                    continue
                command = phase_command(phase, self.settings, self.phases, compiled, self.state_dir)
                args = [*command, *common]
                has_nodes = phase in NODE_PHASES or phase is Phase.FRESHNESS
                result = self._run(phase.value, args, is_advisory, has_nodes)
                if phase in NODE_PHASES or phase is Phase.DOCS:
                    self._keep_run_results(phase)
                if phase is Phase.BUILD and result.status == "success":
                    compiled = compiles_whole_project(self.settings)
                if is_advisory or result.status == "success":
                    continue
                if result.status == "error":
                    stopped = f"skipped: {phase.value} could not run"
                else:
                    blocked = f"skipped: {phase.value} failed"
        except Interrupted:
            for phase in remaining:
                self._record(phase.value, "skipped", message="skipped: the run was interrupted")
            raise
        finally:
            self._restore_job_run_results()

    def retry(self, previous: Path) -> None:
        """`dbt retry` of the failed and skipped nodes in `previous`/run_results.json,
        after installing packages (a fresh container has none)."""
        if self.project.has_packages:
            deps_args = ["deps", *self.invocation.common_args()]
            if self._run(Phase.DEPS.value, deps_args, False, False).status != "success":
                return
        # retry takes no --target: dbt reuses the earlier invocation's.
        args = ["retry", "--state", str(previous), *self.invocation.common_args(target=False)]
        if self.settings.threads:
            args += ["--threads", str(self.settings.threads)]
        self._run("retry", args, advisory=False, has_nodes=True)

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
