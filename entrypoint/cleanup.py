"""`dbt-runner cleanup`: drop a pull request's schemas when it closes.

With the same settings as the pull request's runs (DBT_RUNNER_PR and the warehouse),
it prepares the same workspace, so the profile's target schema is the pull request's,
and runs one macro through the profile's dbt adapter: it lists the schemas and drops
the target schema and every schema under it, and nothing else. Dropping what is not
there is not an error: a second cleanup drops nothing and succeeds.
"""

from __future__ import annotations

import logging
import shutil

from entrypoint.errors import ConfigError, ExitCode
from entrypoint.nodes import NodeRecorder
from entrypoint.pr import DROPPED, cleanup_args, cleanup_project
from entrypoint.settings import Settings
from entrypoint.startup import import_dbt
from entrypoint.workspace import dbt_environment, open_workspace

log = logging.getLogger(__name__)


class _Dropped(NodeRecorder):
    """dbt's events of the run-operation: the schemas the macro dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[str] = []

    def __call__(self, event: object) -> None:
        message = getattr(getattr(event, "info", None), "msg", "")
        if isinstance(message, str) and message.startswith(DROPPED):
            self.dropped.append(message.removeprefix(DROPPED))
        super().__call__(event)


def cleanup(settings: Settings) -> int:
    import_dbt()
    from dbt.cli.main import dbtRunner

    if settings.pr is None:
        raise ConfigError("dbt-runner cleanup needs DBT_RUNNER_PR (or --pr): whose schemas to drop")
    try:
        workspace = open_workspace(settings)
        namespace = workspace.profile.namespace
        if namespace is None:
            raise ConfigError("cleanup: the profile has no pull request's schema to drop")
        project = cleanup_project(settings.run_dir / "cleanup", workspace.project.profile)
        args = [*cleanup_args(namespace.root), "--project-dir", str(project)]
        args += ["--profiles-dir", str(workspace.profile.dir)]
        if workspace.profile.target:
            args += ["--target", workspace.profile.target]
        events = _Dropped()
        with dbt_environment(workspace.dbt_env(), cwd=project):
            result = dbtRunner(callbacks=[events]).invoke(args)
    finally:
        shutil.rmtree(settings.run_dir, ignore_errors=True)
    if not result.success:
        log.error("cleanup failed: %s", events.first_error() or result.exception)
        return ExitCode.DBT_ERROR
    for schema in events.dropped:
        log.info("dropped schema %s", schema)
    log.info(
        "pull request %s: %d schema(s) dropped under %s",
        settings.pr,
        len(events.dropped),
        namespace.root,
    )
    return ExitCode.SUCCESS
