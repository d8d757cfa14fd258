"""`dbt-runner dbt -- ARGS`: any dbt command, with the runner's project and profile.

For ad-hoc work in the image (`dbt ls`, `dbt run-operation`, `dbt --version`): the
same settings, credentials, rendered profile and secrets as `run` (the workspace,
prepared the same way), without phases or reports.
"""

from __future__ import annotations

import os
import shutil

from dbt_runner.config import load_settings
from dbt_runner.engine.session import invoke_dbt
from dbt_runner.engine.startup import import_dbt
from dbt_runner.errors import ExitCode
from dbt_runner.workspace.prepare import dbt_environment, open_workspace

# Arguments that need no project at all.
_STANDALONE = {"--version", "-v", "--help", "-h", "init"}


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
            return _exit_code(invoke_dbt(args))
    finally:
        shutil.rmtree(settings.run_dir, ignore_errors=True)  # the rendered profile, key files


def _exit_code(result: object) -> int:
    if getattr(result, "success", False):
        return ExitCode.SUCCESS
    failed_nodes = getattr(result, "exception", None) is None
    return ExitCode.DBT_FAILURES if failed_nodes else ExitCode.DBT_ERROR
