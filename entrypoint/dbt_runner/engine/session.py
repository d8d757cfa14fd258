"""The dbtRunner boundary: one project's dbt, run in this process.

Every dbt command of a run goes through a `DbtSession`: the arguments every command
shares, the manifest parsed once and handed to every later command (the shell-script
way re-imports dbt and re-parses the project for each), and the NodeRecorder listening
to dbt's events, so a command a stop cuts short still says which nodes finished. The
session runs a command and says what happened (an `Outcome`); what that means for the
report is the run's business (run/recorder.py). The cleanup verb and `dbt-runner dbt`
call dbt through here too: this is the one place dbt is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.attribution import tag_query_groups
from dbt_runner.engine.kinds import BUILT_TYPES, EXECUTED_TYPES, NODE_COMMANDS
from dbt_runner.engine.nodes import NodeRecorder, clean
from dbt_runner.engine.results import node_results, status_of
from dbt_runner.engine.selection import (
    NOT_RUN,
    complete_run_results,
    invocation_args,
    selected_nodes,
)
from dbt_runner.engine.startup import settle
from dbt_runner.report.model import NodeResult, PhaseStatus, now

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

    from dbt_runner.engine.invocation import DbtInvocation

PARSE = "parse"
RETRY = "retry"
# dbt writes manifest.json after every command (seconds on a large project): only the
# job's last dbt phase does; the others get --no-write-json and the session writes their
# run_results.json (or sources.json) from dbt's own result object.
NO_WRITE = "--no-write-json"
# A command that reads the warehouse only through its own queries: no schema listed first.
NO_CACHE = "--no-populate-cache"
# The commands after which dbt has written manifest.json (unless told not to).
WRITES_MANIFEST = NODE_COMMANDS | {"source"}


class Interrupted(KeyboardInterrupt):
    """A command was stopped by SIGINT, SIGTERM or the run's timeout (a KeyboardInterrupt,
    so every stage lets it through to the run's guard)."""


class TimeLimitReached(KeyboardInterrupt):
    """A command was stopped by a time limit of its own (`DbtSession.interrupt`): dbt
    cancels its queries as for a stop, and the run goes on."""


@dataclass
class Clock:
    started_at: datetime = field(default_factory=now)
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 3)


@dataclass
class Outcome:
    """What one dbt command did: the one result object of a command."""

    status: PhaseStatus
    args: list[str]  # the whole argv dbt received
    clock: Clock
    message: str | None = None  # dbt's own words for an error; None for a stop
    nodes: list[NodeResult] = field(default_factory=list)
    complete: bool = True  # False when a stop left nodes whose fate is unknown
    errors: list[str] = field(default_factory=list)  # dbt's error messages, as it logged them
    unmatched: list[str] = field(default_factory=list)  # selection criteria matching no node
    full_parse: str | None = None  # a parse: why dbt did not use its parse cache
    wrote: list[str] = field(default_factory=list)  # the artifacts it left in the target

    @property
    def success(self) -> bool:
        return self.status == "success"


def exception_message(exc: BaseException) -> str:
    return clean(str(exc).strip() or type(exc).__name__)


class DbtSession:
    """dbt for one run: commands on the shared manifest, each one's nodes as they finish."""

    def __init__(
        self,
        invocation: DbtInvocation,
        target_path: Path,
        adapter: str | None,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.invocation = invocation
        # Stops the command in flight with TimeLimitReached, from any thread (the run's
        # guard); None where nothing may be stopped that way.
        self.interrupt = interrupt
        self.target_path = target_path
        self.adapter = adapter
        self.manifest: Manifest | None = None
        self.recorder = NodeRecorder(self.path_of)
        self.manifest_written = False  # by dbt, in the job's last dbt phase (this class's)
        self.full_parse: str | None = None  # why dbt's parse did not use its cache
        self.listener: Callable[[list[str]], None] | None = None  # told each command's argv

    def path_of(self, unique_id: str) -> str | None:
        node = self.manifest.nodes.get(unique_id) if self.manifest else None
        return getattr(node, "original_file_path", None)

    def invoke(self, args: list[str], manifest: Any = None) -> Any:
        """dbt, in this process, on the shared manifest (or `manifest`: a copy of it),
        its events recorded."""
        from dbt.cli.main import dbtRunner

        given = self.manifest if manifest is None else manifest
        return dbtRunner(manifest=given, callbacks=[self.recorder]).invoke(args)

    def common(self, target: bool = True) -> list[str]:
        return self.invocation.common_args(target=target)

    def selected(self, command: list[str]) -> set[str] | None:
        """The unique ids a node command would execute (dbt ls on the shared manifest)."""
        return selected_nodes(self.invoke, command, self.common())

    def parse(self) -> Outcome:
        """Parse the project once; every later command reuses its manifest."""
        args = ["parse", NO_WRITE, *self.common()]
        clock = Clock()
        self.recorder.begin(PARSE)
        result = self.run(args)
        self.full_parse = self.recorder.full_parse
        if isinstance(result.exception, KeyboardInterrupt):
            return self._said(Outcome("interrupted", args, clock))
        if result.success and result.result is not None:
            self.manifest = result.result
            settle()
            if self.adapter == "redshift":
                tag_query_groups(self.manifest)
            nodes = f"{len(result.result.nodes)} nodes"
            return self._said(Outcome("success", args, clock, nodes))
        message = self.recorder.first_error() or (
            exception_message(result.exception) if result.exception else "dbt parse failed"
        )
        return self._said(Outcome("error", args, clock, message))

    def run(self, args: list[str]) -> Any:
        """A command of the run's own (not a listing or an inline compile): told to the
        listener first."""
        if self.listener is not None:
            self.listener(list(args))
        return self.invoke(args)

    def execute(
        self, name: str, command: list[str], has_nodes: bool, common: list[str] | None = None
    ) -> Outcome:
        """One dbt command. `common`: the shared arguments, when not the usual ones.
        `name`: the phase's; `command`: dbt's command and its own arguments; `has_nodes`:
        dbt reports node results."""
        args = [*command, *(self.common() if common is None else common)]
        clock = Clock()
        self.recorder.begin(name)
        result = self.run(args)
        if isinstance(result.exception, KeyboardInterrupt):
            return self._said(self._stopped(name, command, args, clock))
        if command[0] in WRITES_MANIFEST and NO_WRITE not in command:
            self.manifest_written = True  # dbt wrote it as the command ended
        if NO_WRITE in command:
            self._write_results(name, result.result)
        return self._said(self._outcome(name, args, clock, has_nodes, result))

    def _outcome(
        self, name: str, args: list[str], clock: Clock, has_nodes: bool, result: Any
    ) -> Outcome:
        nodes = node_results(name, result.result)
        if result.exception is not None:
            message = self.recorder.first_error() or exception_message(result.exception)
            return Outcome("error", args, clock, message, nodes)
        if result.success:
            return Outcome("success", args, clock, None, nodes)
        if has_nodes and nodes:
            failed = sum(1 for node in nodes if node.outcome == "failed")
            return Outcome("failed", args, clock, f"{failed} node(s) failed", nodes)
        # debug, deps, docs: no node results, so dbt could not do what was asked.
        message = self.recorder.first_error() or f"dbt {name} did not succeed"
        return Outcome("error", args, clock, message, nodes)

    def _said(self, outcome: Outcome) -> Outcome:
        """What dbt said besides its results, and what it left in the target."""
        outcome.errors = list(self.recorder.errors)
        outcome.unmatched = list(self.recorder.unmatched)
        outcome.full_parse = self.recorder.full_parse
        outcome.wrote = sorted(
            name
            for name in ("manifest.json", "run_results.json", "sources.json")
            if (self.target_path / name).is_file()
        )
        return outcome

    def render_inline(
        self, template: str, listener: Callable[[Any], None], cached: bool = True
    ) -> Any:
        """Compile a Jinja template as an inline node on the shared manifest (`cached`: the
        adapter's cache filled first), for `listener` to hear its logs: dbt prints and
        writes nothing. dbt's result; its exception TimeLimitReached or Interrupted."""
        from dbt.cli.main import dbtRunner

        args = ["compile", "--inline", template, NO_WRITE, *([] if cached else [NO_CACHE])]
        args += ["--log-level", "none", *self.common()]
        try:
            return dbtRunner(manifest=self.manifest, callbacks=[listener]).invoke(args)
        finally:
            self._forget_inline_nodes()

    def _forget_inline_nodes(self) -> None:
        """An inline node stays in the manifest dbt was given; the next would clash."""
        if self.manifest is None:
            return
        for unique_id in [uid for uid in self.manifest.nodes if uid.startswith("sql_operation.")]:
            del self.manifest.nodes[unique_id]

    def _write_results(self, name: str, outcome: Any) -> None:
        """What dbt would have written, without its manifest.json; a `dbt retry` of
        these results writes its own."""
        if not hasattr(outcome, "write"):
            return
        written = "sources.json" if name == "freshness" else "run_results.json"
        if isinstance(getattr(outcome, "args", None), dict):
            outcome.args["write_json"] = True
        outcome.write(str(self.target_path / written))

    def _stopped(self, name: str, command: list[str], args: list[str], clock: Clock) -> Outcome:
        """A command a stop cut short: every node that finished, and every node it had
        selected but not finished, as skipped in the outcome and the run results."""
        nodes = list(self.recorder.nodes)
        complete = command[0] != RETRY  # what dbt retry had selected is its own business
        if self.manifest is not None and command[0] in EXECUTED_TYPES:
            dbt_args = invocation_args()  # before dbt ls replaces them
            selected = self.selected(command)
            complete = selected is not None
            pending = (selected or set()) - {node.unique_id for node in nodes}
            nodes += [self._not_run(unique_id, name) for unique_id in sorted(pending)]
            outcomes = {node.unique_id: (node.status, node.message) for node in nodes}
            path = self.target_path / "run_results.json"
            complete_run_results(path, outcomes, self.recorder.run_results_written, dbt_args)
        return Outcome("interrupted", args, clock, None, nodes, complete)

    def _not_run(self, unique_id: str, phase: str) -> NodeResult:
        manifest: Any = self.manifest
        node: Any = manifest.nodes.get(unique_id) or manifest.unit_tests.get(unique_id)
        return NodeResult(
            unique_id=unique_id,
            name=getattr(node, "name", unique_id.rsplit(".", 1)[-1]),
            resource_type=status_of(getattr(node, "resource_type", unique_id.split(".", 1)[0])),
            phase=phase,
            status="skipped",
            outcome="skipped",
            message=NOT_RUN,
            relation=getattr(node, "relation_name", None),
            path=getattr(node, "original_file_path", None),
        )

    def written(self, nodes: list[NodeResult]) -> list[str]:
        """The relations `nodes` built, and those dbt began and never said it finished
        (a stop may have come after the warehouse committed): unique ids."""
        finished = {result.unique_id for result in nodes}
        built = {
            result.unique_id
            for result in nodes
            if result.phase in NODE_COMMANDS and result.outcome != "skipped"
        }
        began = self.recorder.began - finished
        return sorted(uid for uid in built | began if uid.split(".", 1)[0] in BUILT_TYPES)

    def write_manifest(self) -> None:
        """manifest.json once, when no command of the job wrote it (a run stopped or
        failed before its last dbt phase): the artifacts and a retry still have it."""
        if self.manifest is None or self.manifest_written:
            return
        from dbt.parser.manifest import write_manifest

        self.target_path.mkdir(parents=True, exist_ok=True)
        write_manifest(self.manifest, str(self.target_path))
        self.manifest_written = True


def invoke_dbt(args: list[str], callbacks: list[Callable[[Any], None]] | None = None) -> Any:
    """A dbt command outside a run's session (the cleanup verb, `dbt-runner dbt`)."""
    from dbt.cli.main import dbtRunner

    return dbtRunner(callbacks=callbacks or []).invoke(args)
