"""Dagster Pipes: when Dagster launched the image (its bootstrap variables are set),
the run tells the Dagster run what happens as it happens: each model, seed and
snapshot built is an asset materialization, each data test an asset check on the node
it tests, the runner's log lines are Pipes logs, and the run's summary is a custom
message at the end. Asset and check names are dagster-dbt's (dagster_keys.py). Without
the variables nothing here runs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.kinds import NODE_COMMANDS
from dbt_runner.engine.results import COMPILED_SQL_LIMIT
from dbt_runner.engine.selection import reselected
from dbt_runner.outputs.dagster_keys import (
    ASSET_TYPES,
    asset_key,
    asset_keys_of,
    checked_node,
    props_of,
    user_string,
)

if TYPE_CHECKING:
    from dbt_runner.report.model import NodeResult, RunReport

log = logging.getLogger(__name__)

BOOTSTRAP = ("DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES")
SEVERITY = {"warn": "WARN", "error": "ERROR"}
LISTED = 20  # nodes named in the one line about what was not built


def launched_by_dagster() -> bool:
    return all(os.environ.get(name) for name in BOOTSTRAP)


# Every message to Dagster goes through this lock: dbt finishes nodes on several threads,
# and dagster-pipes writes a message and its newline as two writes, which two threads
# can interleave on a stream (two messages on one line: both lost).
WRITING = threading.RLock()


class _ToDagster(logging.Handler):
    """The runner's own log lines, as Pipes logs."""

    def __init__(self, pipes: Any) -> None:
        super().__init__(logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(__name__):
            return  # its own warnings would loop
        try:
            with WRITING:
                self.pipes.log.log(record.levelno, record.getMessage())
        except Exception:  # a closed or broken channel never stops the run
            self.handleError(record)


class PipesReporter:
    """One writer of the run's events to Dagster. `pipes`: dagster-pipes' context;
    `run_id` and `job`: the run's, in each materialization's metadata."""

    def __init__(self, pipes: Any, run_id: str, job: str) -> None:
        self.pipes, self.run_id, self.job = pipes, run_id, job
        self.manifest_of: Callable[[], Any] = lambda: None
        self.selected_by: Callable[[list[str]], set[str] | None] = lambda command: None
        self.failed = False
        self.said_unknown = False  # the keys Dagster asked for that no node has: said once
        self.left_out: list[str] = []  # assets the job selected and Dagster did not ask for

    def attach(self, session: Any, sequence: Any) -> None:
        """Told of each node `session` (the run's dbt) finishes; `sequence` (its steps)
        hands it each node phase's command, to leave out the assets Dagster did not ask
        for."""
        self.manifest_of = lambda: session.manifest
        self.selected_by = session.selected
        session.recorder.observers.append(self.node_finished)
        sequence.narrow = self.narrow

    @property
    def asset_keys(self) -> list[str]:
        """The assets Dagster asked for (an asset step), else none."""
        return list(self.pipes.asset_keys) if self.pipes.is_asset_step else []

    def narrow(self, command: list[str]) -> list[str]:
        """A node phase's command selecting, of the assets it selects (`dbt ls` on the
        parsed project), those Dagster asked for, by name as dagster-dbt selects them (so
        their tests run with them); the command as it is when Dagster asked for all of
        them. A run that left any out never promotes a state (`left_out`)."""
        manifest, asked = self.manifest_of(), set(self.asset_keys)
        if manifest is None or not asked:
            return command
        assets = asset_nodes(manifest)
        if not self.said_unknown:
            self.said_unknown = True
            unknown = sorted(asked - set(assets))
            if unknown:
                log.warning(
                    "Dagster asked for asset(s) this project has no node for: %s",
                    ", ".join(unknown),
                )
        if set(assets) <= asked:
            return command
        selected = self.selected_by(command)
        if selected is None:  # its events for assets not asked for are log lines
            log.warning("%s: Dagster's selection not applied (dbt could not list it)", command[0])
            return command
        selected_keys = set(asset_keys_of(manifest, selected))
        left_out = [name for key, name in assets.items() if key in selected_keys - asked]
        if not left_out:
            return command
        self.left_out += left_out
        log.info(
            "%s: %d of its %d asset(s) left out, not asked for by Dagster",
            command[0],
            len(left_out),
            len(selected_keys),
        )
        kept = [name for key, name in assets.items() if key in selected_keys & asked]
        return reselected(command, kept) if kept else [*command, "--exclude", *left_out]

    def node_finished(self, node: NodeResult) -> None:
        """A node dbt just finished: a materialization, a check, or a log line."""
        try:
            with WRITING:
                self._report(node)
        except Exception as exc:
            if not self.failed:
                log.warning("Dagster Pipes: events stopped (%s: %s)", type(exc).__name__, exc)
            self.failed = True

    def _report(self, node: NodeResult) -> None:
        if node.phase not in NODE_COMMANDS:
            return  # docs generate's compile after a failed build: nothing built
        manifest = self.manifest_of()
        found = manifest.nodes.get(node.unique_id) if manifest is not None else None
        if found is None or self.failed:
            return
        if node.resource_type in ASSET_TYPES:
            self._materialized(node, props_of(found))
        elif node.resource_type == "test":
            self._checked(node, found, manifest)
        elif node.resource_type == "unit_test":
            self.pipes.log.info(f"unit test {node.name}: {node.status}")

    def _materialized(self, node: NodeResult, props: dict[str, Any]) -> None:
        if node.outcome == "failed":
            self.pipes.log.error(f"{node.resource_type} {node.name} {node.status}: {node.message}")
            return
        if node.outcome == "skipped":
            self.pipes.log.info(f"{node.resource_type} {node.name} skipped: {node.message}")
            return
        metadata = {
            "relation": node.relation,
            "rows_affected": node.rows_affected,
            "execution_seconds": node.execution_time_s,
            "dbt_runner_run_id": self.run_id,
            "dbt_runner_job": self.job,
            "unique_id": node.unique_id,
        }
        key = user_string(asset_key(props))
        if not self._in_step(key, f"{node.resource_type} {node.name} built"):
            return
        self.pipes.report_asset_materialization(metadata=_present(metadata), asset_key=key)

    def _checked(self, node: NodeResult, test: Any, manifest: Any) -> None:
        props = props_of(test)

        def nodes() -> Iterator[tuple[str, dict[str, Any]]]:
            return ((uid, props_of(found)) for uid, found in manifest.nodes.items())

        checked = checked_node(props, nodes)
        target = props_of(manifest.nodes[checked]) if checked in manifest.nodes else None
        if target is None or target["resource_type"] not in ASSET_TYPES:
            return  # a source's tests are no checks in dagster-dbt's default
        severity = SEVERITY.get(str(props["config"].get("severity") or "error").lower(), "ERROR")
        metadata = {"failing_rows": node.failures, "status": node.status, "path": node.path}
        metadata |= _compiled(test, node.outcome != "ok")
        key = user_string(asset_key(target))
        if not self._in_step(key, f"test {node.name} {node.status}"):
            return
        self.pipes.report_asset_check(
            check_name=node.name,
            passed=node.outcome == "ok",  # a warn test that found rows did not pass
            severity=severity,
            metadata=_present(metadata),
            asset_key=key,
        )

    def _in_step(self, key: str, what: str) -> bool:
        """Whether Dagster's step has asset `key`; else `what` happened is a log line.
        A test dbt runs with its selected parent can check an asset Dagster did not ask
        for (a relationship's other side), and Pipes refuses an event for such a key."""
        if not self.pipes.is_asset_step or key in self.pipes.asset_keys:
            return True
        self.pipes.log.info(f"{what}, on asset {key}, which this step does not have")
        return False

    def finish(self, report: RunReport) -> None:
        """What the run left unbuilt, in one line, and its summary."""
        try:
            with WRITING:
                self._finish(report)
        except Exception as exc:
            log.warning("Dagster Pipes: the summary was not sent (%s)", exc)

    def _finish(self, report: RunReport) -> None:
        unbuilt = self._unbuilt(report)
        deferring = self.job in ("slim", "fresh")
        if unbuilt:
            why = "deferred to the state" if deferring else "not selected"
            self.pipes.log.info(
                f"{len(unbuilt)} asset(s) not built by this {self.job} job ({why}): "
                + _listed(list(unbuilt.values()))
            )
        asked = sorted(set(unbuilt) & set(self.asset_keys)) if deferring else []
        if asked:
            self.pipes.log.error(
                f"Dagster asked for {len(asked)} asset(s) this {self.job} job deferred to the "
                f"state (their last materialization stands): {_listed(asked)}. Dagster fails a "
                "Pipes step that does not report every asset it asked for: ask for the "
                "assets `dbt-runner plan --nodes` lists for this job (docs/dagster.md)"
            )
        summary: dict[str, Any] = {"run_id": report.run_id, "status": report.status}
        summary |= {"exit_code": report.exit_code, "report_url": report.links.report_url}
        self.pipes.report_custom_message(summary)

    def _unbuilt(self, report: RunReport) -> dict[str, str]:
        """The project's assets the run did not build: their names by key."""
        manifest = self.manifest_of()
        if manifest is None:
            return {}
        built = {node.name for node in report.nodes if node.resource_type in ASSET_TYPES}
        return {key: name for key, name in asset_nodes(manifest).items() if name not in built}


def asset_nodes(manifest: Any) -> dict[str, str]:
    """The project's assets (its own models, seeds and snapshots, ephemeral ones aside):
    their names by key."""
    project = manifest.metadata.project_name
    return {
        user_string(asset_key(props_of(node))): node.name
        for node in manifest.nodes.values()
        if str(getattr(node.resource_type, "value", node.resource_type)) in ASSET_TYPES
        and node.package_name == project
        and getattr(node.config, "materialized", "") != "ephemeral"
    }


def _compiled(test: Any, failed: bool) -> dict[str, Any]:
    """A test's compiled SQL when it did not pass, to find its failing rows with (the
    file dbt wrote it to is in the container's scratch folder, gone with it)."""
    sql = getattr(test, "compiled_code", None) if failed else None
    return {"compiled_sql": sql[:COMPILED_SQL_LIMIT] if isinstance(sql, str) else None}


def _listed(names: list[str]) -> str:
    return ", ".join(names[:LISTED]) + (" ..." if len(names) > LISTED else "")


def _present(metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in metadata.items() if value is not None}


@contextmanager
def opened(run_id: str, job: str) -> Iterator[PipesReporter | None]:
    """The Pipes context for the run (`run_id`, `job`) when Dagster launched it, else
    None. The runner's log goes to Dagster while it is open."""
    if not launched_by_dagster():
        yield None
        return
    from dagster_pipes import open_dagster_pipes

    try:
        opening = open_dagster_pipes(message_writer=_line_at_once_writer())
    except Exception as exc:  # the job still runs, reports and notifies
        log.warning("Dagster's Pipes variables are set, but Pipes did not open (%s)", exc)
        yield None
        return
    with opening as pipes:
        handler = _ToDagster(pipes)
        logging.getLogger("dbt_runner").addHandler(handler)
        try:
            yield PipesReporter(pipes, run_id, job)
        finally:
            logging.getLogger("dbt_runner").removeHandler(handler)


def _line_at_once_writer() -> Any:
    """dagster-pipes' own writer, except that a message on stdout or stderr (Docker,
    ECS, Kubernetes) is one write with its newline: two writes could have the runner's
    own log line land between them."""
    import json
    import sys

    from dagster_pipes import PipesDefaultMessageWriter, PipesMessageWriterChannel

    class Line(PipesMessageWriterChannel):
        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def write_message(self, message: Any) -> None:
            self.stream.write(json.dumps(message) + "\n")
            self.stream.flush()

    class LineAtOnce(PipesDefaultMessageWriter):
        @contextmanager
        def open(self, params: Any) -> Iterator[Any]:
            if params.get(self.STDIO_KEY) in (self.STDERR, self.STDOUT):
                yield Line(sys.stderr if params[self.STDIO_KEY] == self.STDERR else sys.stdout)
                return
            with super().open(params) as channel:
                yield channel

    return LineAtOnce()
