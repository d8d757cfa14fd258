"""`dbt-runner dbt -- ARGS`: any dbt command, with the runner's project and profile.

For ad-hoc work in the image (`dbt ls`, `dbt run-operation`, `dbt --version`): the
same settings, credentials, rendered profile and secrets as `run`, without phases or
reports.
"""

from __future__ import annotations

import os
import shutil

from entrypoint import credentials
from entrypoint.errors import ExitCode
from entrypoint.pipeline import dbt_environment
from entrypoint.profiles import check_adapter, prepare_profile
from entrypoint.project import prepare_project
from entrypoint.settings import load_settings

# Arguments that need no project at all.
_STANDALONE = {"--version", "-v", "--help", "-h", "init"}


def run_dbt(args: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    stats = os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": stats}
    if not args or _STANDALONE.intersection(args[:1]):
        with dbt_environment(env):
            return _exit_code(dbtRunner().invoke(args))

    settings = load_settings()
    run_dir = settings.work_dir / "runs" / settings.run_id
    try:
        project = prepare_project(settings.project_dir, settings.work_dir)
        check_adapter(settings, project)
        fetched = credentials.fetch(settings, run_dir / "secrets")
        profile = prepare_profile(settings, project, run_dir, fetched.fields)
        env |= {"DBT_PROJECT_DIR": str(project.dir), "DBT_PROFILES_DIR": str(profile.dir)}
        env |= profile.env
        if profile.target:
            env["DBT_TARGET"] = profile.target
        with dbt_environment(env):
            return _exit_code(dbtRunner().invoke(args))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)  # the rendered profile and any key file


def _exit_code(result: object) -> int:
    if getattr(result, "success", False):
        return ExitCode.SUCCESS
    failed_nodes = getattr(result, "exception", None) is None
    return ExitCode.DBT_FAILURES if failed_nodes else ExitCode.DBT_ERROR
