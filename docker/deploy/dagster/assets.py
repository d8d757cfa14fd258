"""The dbt project's assets in Dagster, materialized by the dbt-runner image.

dagster-dbt describes the assets and checks from the project's manifest (the one a run
publishes, or `dbt-runner dbt -- parse`); the asset function launches the image through
Pipes, which reports each model as it is built and each test as it runs. Dagster's
selection (a subset of the assets) becomes the run's `--select`.

Set DAGSTER_DBT_MANIFEST to the manifest and DAGSTER_DBT_RUNNER_IMAGE to the image; the job's
own settings (DBT_RUNNER_*) go in `env`. Swap the client for the platform: the same
function runs with PipesECSClient (the stack's task definition) or PipesK8sClient
(docs/dagster.md).
"""

import json
import os
import subprocess
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    Definitions,
    PipesTempFileContextInjector,
    PipesTempFileMessageReader,
    open_pipes_session,
)
from dagster._core.errors import DagsterPipesExecutionError
from dagster_dbt import dbt_assets
from dagster_docker import PipesDockerClient

MANIFEST = json.loads(Path(os.environ.get("DAGSTER_DBT_MANIFEST", "manifest.json")).read_text())
JOB_ENV = {name: value for name, value in os.environ.items() if name.startswith("DBT_RUNNER_")}
POLL_S = 0.2  # how often the process's new results are handed to Dagster


@dbt_assets(manifest=MANIFEST)
def dbt_project_in_docker(
    context: AssetExecutionContext, pipes: PipesDockerClient
) -> Iterator[Any]:
    """The image, as a container of its own."""
    yield from pipes.run(
        context=context,
        image=os.environ["DAGSTER_DBT_RUNNER_IMAGE"],
        command=["run"],
        env=JOB_ENV,
    ).get_results(implicit_materializations=False)  # deferred: its last one stays


@dbt_assets(manifest=MANIFEST, name="dbt_project_in_process")
def dbt_project_as_process(context: AssetExecutionContext) -> Iterator[Any]:
    """The package, as a process on Dagster's own machine (no Docker). Each result is
    yielded as it arrives, so Dagster's event log shows a node as the run finishes it
    (`PipesClient.run(...).get_results()` yields them when the process ends)."""
    command = [os.environ.get("DAGSTER_DBT_RUNNER_COMMAND", "dbt-runner"), "run"]
    with open_pipes_session(
        context=context,
        context_injector=PipesTempFileContextInjector(),
        message_reader=PipesTempFileMessageReader(),
    ) as session:
        env = {**os.environ, **JOB_ENV, **session.get_bootstrap_env_vars()}
        process = subprocess.Popen(command, env=env)
        seen = 0
        while process.poll() is None:
            seen = yield from _new_results(session, seen)
            time.sleep(POLL_S)
    yield from _new_results(session, seen)  # the last ones, read as the session closed
    if process.returncode:
        raise DagsterPipesExecutionError(
            f"External execution process failed with code {process.returncode}"
        )


def _new_results(session: Any, seen: int) -> Generator[Any, None, int]:
    """The results reported since the first `seen` (a deferred asset gets none)."""
    results = session.get_results(implicit_materializations=False)
    yield from results[seen:]
    return len(results)


defs = Definitions(
    assets=[dbt_project_in_docker],
    resources={"pipes": PipesDockerClient()},
)
