"""Materialize the example assets (docker/deploy/dagster/assets.py) with a real Dagster
and print what Dagster's own event log holds, as one JSON object. Runs in the Dagster
venv (make dagster-venv), never in the runner's.

Usage: python tests/dagster_job.py docker|process|changes|docker-changes [ASSET_KEY ...]
- changes: the package as a process, for the assets the example's slim schedule asks
  for on a tick (`dbt-runner plan --nodes`); what the tick said is under "tick".
- docker-changes: the same with the image (the plan too, `docker run`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    RunRequest,
    build_schedule_context,
    materialize,
)
from dagster_docker import PipesDockerClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docker" / "deploy" / "dagster"))
import assets


def plain(metadata: Any) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in (metadata or {}).items()}


def in_process() -> list[str]:
    """The package's dbt-runner, as the process variant runs it."""
    return [os.environ["DAGSTER_DBT_RUNNER_COMMAND"]]


def main() -> None:
    mode, keys = sys.argv[1], sys.argv[2:]
    if mode.startswith("docker"):
        definition, client = assets.dbt_project_in_docker, PipesDockerClient()
    else:
        definition, client = assets.dbt_project_as_process, None  # it launches the process itself
    instance = DagsterInstance.ephemeral()
    selection = [AssetKey.from_user_string(key) for key in keys] or None
    tick: dict[str, Any] = {}
    if mode.endswith("changes"):
        runner = assets.in_docker if mode.startswith("docker") else in_process
        schedule = assets.slim_schedule(definition, runner, "0 * * * *")
        asked = schedule(build_schedule_context(instance=instance))
        if not isinstance(asked, RunRequest):
            print(json.dumps({"tick": {"skipped": asked.skip_message}}))
            return
        selection = list(asked.asset_selection or [])
        tick = {"asked": sorted(key.to_user_string() for key in selection)}
    result = materialize(
        [definition],
        resources={"pipes": client},
        instance=instance,
        selection=selection,
        raise_on_error=False,
    )
    found: dict[str, Any] = {
        "tick": tick,
        "success": result.success,
        "materializations": [],
        "checks": [],
        "logs": [],
        "failures": [],
    }
    for record in instance.all_logs(result.run_id):
        event = record.dagster_event
        if event is None:
            found["logs"].append({"level": record.level, "message": record.user_message})
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            data = event.event_specific_data.materialization
            found["materializations"].append(
                {
                    "key": data.asset_key.to_user_string(),
                    "metadata": plain(data.metadata),
                    "at": record.timestamp,
                }
            )
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            found["checks"].append(
                {
                    "name": data.check_name,
                    "asset": data.asset_key.to_user_string(),
                    "passed": data.passed,
                    "severity": data.severity.value,
                    "metadata": plain(data.metadata),
                }
            )
        elif event.event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
            error = getattr(event.event_specific_data, "error", None)
            causes = [error, getattr(error, "cause", None)] if error is not None else []
            said = [event.message or "", *(getattr(c, "message", "") or "" for c in causes)]
            found["failures"].append(" ".join(part.strip() for part in said if part))
    expected = {key.to_user_string() for key in definition.keys}
    found["asset_keys"] = sorted(expected)
    found["check_names"] = sorted(key.name for key in definition.check_keys)
    print(json.dumps(found, default=str))


if __name__ == "__main__":
    main()
