"""The dbt project's assets in Dagster, materialized by the dbt-runner image.

dagster-dbt describes the assets and checks from the project's manifest (the one a run
publishes, or `dbt-runner dbt -- parse`); the asset function launches the image through
Pipes, which reports each model as it is built and each test as it runs. Dagster's
selection (a subset of the assets) becomes the run's `--select`.

A slim job builds only what changed, and Pipes fails a step that does not report every
asset it selected: `slim_in_docker` asks the image which assets the job will build
(`dbt-runner plan --nodes`) and launches a run for exactly those.

Set DAGSTER_DBT_MANIFEST to the manifest and DAGSTER_DBT_RUNNER_IMAGE to the image; the job's
own settings (DBT_RUNNER_*) go in `env`. Swap the client for the platform: the same
function runs with PipesECSClient (the stack's task definition) or PipesK8sClient
(docs/dagster.md).
"""

import json
import os
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Definitions,
    PipesTempFileContextInjector,
    PipesTempFileMessageReader,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    open_pipes_session,
    schedule,
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


def assets_the_job_builds(runner: Callable[[], list[str]]) -> list[AssetKey] | str:
    """The assets the job (JOB_ENV) will build, as `dbt-runner plan --nodes` lists them
    with the job's state (a slim job: the changes and the children they reach), or why
    the plan cannot know (a fresh job decides in the run). `runner`: the command that
    runs dbt-runner (the image, or the package), asked at each tick."""
    planned = subprocess.run(
        [*runner(), "plan", "--json", "--nodes"],
        env={**os.environ, **JOB_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if planned.returncode:
        raise RuntimeError(f"dbt-runner plan exited {planned.returncode}: {planned.stderr[-2000:]}")
    steps = json.loads(planned.stdout)
    undecided = [step["nodes"] for step in steps if isinstance(step.get("nodes"), str)]
    if undecided:
        return undecided[0]
    keys = {key for step in steps for key in step.get("assets", [])}
    return [AssetKey.from_escaped_user_string(key) for key in sorted(keys)]


def slim_schedule(
    assets: AssetsDefinition, runner: Callable[[], list[str]], cron: str
) -> ScheduleDefinition:
    """A schedule that launches `assets` for exactly what the job will build (`runner`:
    as for assets_the_job_builds; `cron`: when)."""

    @schedule(cron_schedule=cron, target=assets, name=f"{assets.node_def.name}_changes")
    def changes(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        keys = assets_the_job_builds(runner)
        if isinstance(keys, str):
            return SkipReason(f"the job's assets are {keys}: select them in Dagster")
        if not keys:
            return SkipReason("nothing changed since the job's state")
        return RunRequest(asset_selection=keys)

    return changes


def in_docker() -> list[str]:
    """dbt-runner in the image, with the job's settings from this environment."""
    settings = [flag for name in JOB_ENV for flag in ("-e", name)]
    return ["docker", "run", "--rm", *settings, os.environ["DAGSTER_DBT_RUNNER_IMAGE"]]


slim_in_docker = slim_schedule(dbt_project_in_docker, in_docker, "*/30 * * * *")

defs = Definitions(
    assets=[dbt_project_in_docker],
    schedules=[slim_in_docker],
    resources={"pipes": PipesDockerClient()},
)
