"""`dbt-runner dbt -- ARGS`: any dbt command, with the runner's project and profile.

For ad-hoc work in the image (`dbt ls`, `dbt run-operation`, `dbt --version`): the
same settings, credentials, rendered profile and secrets as `run` (the workspace,
prepared the same way), without phases or reports.

A command that builds (run, build, seed, snapshot, retry, clone) writes into the same
target the env's state describes, so it does what a run does about it: it takes the
env's lease (one writer at a time; a held env is an error here, never a silent skip),
and it appends a write to the target's log before dbt starts, closed with what it
built when dbt ends (state/writes.py): the next slim job builds that again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dbt_runner.config import Concurrency, Settings, load_settings
from dbt_runner.engine.kinds import BUILDING_COMMANDS
from dbt_runner.engine.nodes import NodeRecorder
from dbt_runner.engine.session import invoke_dbt
from dbt_runner.engine.startup import import_dbt
from dbt_runner.errors import ExitCode, InfraError
from dbt_runner.state.lease import Holder, busy_message, take_lease
from dbt_runner.state.promotion import begin_building, end_building
from dbt_runner.state.touched import cascades, touched
from dbt_runner.workspace.prepare import Workspace, dbt_environment, open_workspace

# Arguments that need no project at all.
_STANDALONE = {"--version", "-v", "--help", "-h", "init"}
# dbt's commands: the first of the arguments that is one names the command.
_COMMANDS = {
    *BUILDING_COMMANDS,
    *("clean", "compile", "debug", "deps", "docs", "init", "list", "ls", "parse"),
    *("run-operation", "show", "source", "test"),
}


def dbt_verb(args: list[str]) -> int:
    import_dbt()

    stats = os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": stats}
    if not args or _STANDALONE.intersection(args[:1]):
        with dbt_environment(env):
            return _exit_code(invoke_dbt(args))

    settings = load_settings()
    try:
        workspace = open_workspace(settings)
        env |= workspace.profile.env
        env |= {
            "DBT_PROJECT_DIR": str(workspace.project.dir),
            "DBT_PROFILES_DIR": str(workspace.profile.dir),
        }
        if workspace.profile.target:
            env["DBT_TARGET"] = workspace.profile.target
        with dbt_environment(env, cwd=workspace.project.dir):
            if command_of(args) not in BUILDING_COMMANDS:
                return _exit_code(invoke_dbt(args))
            return _building(settings, workspace, args)
    finally:
        shutil.rmtree(settings.run_dir, ignore_errors=True)  # the rendered profile, key files


def command_of(args: list[str]) -> str | None:
    """The dbt command the arguments name (`--debug run -s x` -> run)."""
    return next((arg for arg in args if arg in _COMMANDS), None)


def _building(settings: Settings, workspace: Workspace, args: list[str]) -> int:
    """A command that writes into the warehouse: under the env's lease, recorded in the
    target's write log."""
    command = str(command_of(args))
    recorder = NodeRecorder()
    recorder.begin(command)  # the nodes it starts are its writes
    job = f"dbt {command}"
    with _leased(settings, workspace.project.name, job):
        target = workspace.identify_target(_option(args, "--target", "-t"))
        claim = begin_building(settings, workspace.project.name, target, job)
        result = invoke_dbt(args, callbacks=[recorder])
        if claim is not None:
            manifest = _manifest(_target_path(args, workspace.project.dir))
            nodes, why_whole = _touched(recorder, manifest, workspace.profile.adapter)
            end_building(claim, nodes, why_whole)
    return _exit_code(result)


@contextmanager
def _leased(settings: Settings, project: str, job: str) -> Iterator[None]:
    """The env's lease for the command; a run holding it is an error (exit 4), waited
    for with DBT_RUNNER_CONCURRENCY=wait."""
    if settings.concurrency is Concurrency.SKIP:
        settings = settings.model_copy(update={"concurrency": Concurrency.FAIL})
    taken = take_lease(settings, project, job)
    if isinstance(taken, Holder):  # not with FAIL: take_lease raises
        raise InfraError(busy_message(settings, project, taken))
    try:
        yield
    finally:
        taken.release()


def _touched(
    recorder: NodeRecorder, manifest: Any, adapter: str | None
) -> tuple[list[str], str | None]:
    """What the command built (and began), with the views dropped with it, as
    selectors; why it may have written everything, when that cannot be told."""
    finished = {node.unique_id: node for node in recorder.nodes}
    built = {uid for uid, node in finished.items() if node.outcome != "skipped"}
    began = recorder.began - set(finished)
    if not built | began:
        return [], None
    if manifest is None:
        return [], "its manifest.json could not be read: what it built is not known"
    if manifest.child_map is None and cascades(adapter):
        return [], "its manifest.json has no child map: the views it dropped are not known"
    nodes, _ = touched(sorted(built | began), manifest, adapter)
    return nodes, None


def _manifest(target_path: Path) -> Any:
    """The manifest dbt wrote for the command (it writes it before running nodes)."""
    try:
        document = json.loads((target_path / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return SimpleNamespace(nodes=document.get("nodes") or {}, child_map=document.get("child_map"))


def _target_path(args: list[str], project_dir: Path) -> Path:
    chosen = _option(args, "--target-path") or os.environ.get("DBT_TARGET_PATH") or "target"
    path = Path(chosen)
    return path if path.is_absolute() else project_dir / path


def _option(args: list[str], *names: str) -> str | None:
    """The value of an option (`--target prod`, `--target=prod`), None when absent."""
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _exit_code(result: object) -> int:
    if getattr(result, "success", False):
        return ExitCode.SUCCESS
    failed_nodes = getattr(result, "exception", None) is None
    return ExitCode.DBT_FAILURES if failed_nodes else ExitCode.DBT_ERROR
