"""Which nodes a dbt command selects, in dbt's own words (`dbt ls` on the shared
manifest), and the run results of a command that a stop cut short.

dbt writes run_results.json on an interrupt with the nodes that finished; the ones it
had selected but not finished are simply absent, so `dbt retry` would never run them.
`complete_run_results` adds each (as `skipped`, which `dbt retry` re-runs), and the
nodes that finished after dbt wrote the file, with their own status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_runner.engine.kinds import EXECUTED_TYPES

log = logging.getLogger(__name__)

# Selection flags of a node command, and how many values follow each.
_SELECTION_FLAGS = {"--select", "--exclude", "--selector", "--state", "--exclude-resource-type"}
NOT_RUN = "not run: the run was stopped before this node finished"


def selection_args(command: list[str]) -> list[str]:
    """The selection part of a node command (`build --select a b --threads 4` ->
    `--select a b`), for `dbt ls` to select exactly what the command would."""
    kept: list[str] = []
    keeping = False
    for arg in command[1:]:
        if arg.startswith("--"):
            keeping = arg in _SELECTION_FLAGS
        if keeping:
            kept.append(arg)
    return kept


def reselected(command: list[str], names: list[str]) -> list[str]:
    """`command` selecting `names` instead of its own selection (`--select`, `--selector`);
    its exclusions, state and other flags kept (`build --select a+ --exclude b --defer`,
    [c] -> `build --exclude b --defer --select c`)."""
    kept = [command[0]]
    dropping = False
    for arg in command[1:]:
        if arg.startswith("-"):  # a flag (no selection value starts with one)
            dropping = arg in ("--select", "--selector", "-s")
        if not dropping:
            kept.append(arg)
    return [*kept, "--select", *names]


def selected_nodes(
    invoke: Callable[[list[str]], Any], command: list[str], common: list[str]
) -> set[str] | None:
    """The unique ids `command` selects and executes (ephemeral models never execute);
    None when dbt cannot say. `invoke` runs a dbt command on the shared manifest;
    `common` holds the arguments every command shares (project, profile, target)."""
    types = EXECUTED_TYPES.get(command[0])
    if types is None:
        return None
    args = ["ls", "--log-level", "none", *selection_args(command), "--resource-type", *types]
    result = invoke([*args, "--output", "json", "--output-keys", "unique_id", "config", *common])
    if not result.success or result.result is None:
        log.warning("dbt could not list what %s selected: %s", command[0], result.exception)
        return None
    selected = set()
    for line in result.result:
        item = json.loads(line)
        if (item.get("config") or {}).get("materialized") != "ephemeral":
            selected.add(item["unique_id"])
    return selected


def complete_run_results(
    path: Path, outcomes: dict[str, tuple[str, str | None]], written: bool, args: dict[str, Any]
) -> None:
    """Give every node of `outcomes` (unique id -> status, message) a result in
    run_results.json: dbt wrote the file before the nodes still running had theirs,
    and never lists the ones it had not started. Creates the file with dbt's own
    classes, and the command's `args`, when dbt did not write it.
    `path`: run_results.json; `written`: whether dbt wrote it."""
    if not written or not path.is_file():
        _write_empty_run_results(path, args)
    document = json.loads(path.read_text())
    known = {result["unique_id"] for result in document["results"]}
    for unique_id, (status, message) in sorted(outcomes.items()):
        if unique_id not in known:
            document["results"].append(_result(unique_id, status, message))
    path.write_text(json.dumps(document))


def _result(unique_id: str, status: str, message: str | None) -> dict[str, Any]:
    return {
        "status": status,
        "timing": [],
        "thread_id": "",
        "execution_time": 0.0,
        "adapter_response": {},
        "message": message,
        "failures": None,
        "unique_id": unique_id,
        "compiled": None,
        "compiled_code": None,
        "relation_name": None,
        "batch_results": None,
    }


def invocation_args() -> dict[str, Any]:
    """The arguments of the dbt command that just ran, as run_results.json records them
    (`dbt retry` repeats the command from them). Read right after the command: the
    next invocation replaces them."""
    from dbt.flags import get_flags
    from dbt.utils import args_to_dict

    args: dict[str, Any] = args_to_dict(get_flags())  # type: ignore[no-untyped-call]
    args["write_json"] = True  # a retry writes its results, whatever this command did
    return args


def _write_empty_run_results(path: Path, args: dict[str, Any]) -> None:
    """run_results.json with no results and the command's own arguments."""
    from dbt.artifacts.schemas.run import RunResultsArtifact

    artifact = RunResultsArtifact.from_execution_results(
        results=[],
        elapsed_time=0.0,
        generated_at=datetime.now(UTC).replace(tzinfo=None),
        args=args,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    artifact.write(str(path))
