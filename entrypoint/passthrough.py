"""`dbt-runner dbt -- ARGS`: any dbt command, with the runner's project and profile.

For ad-hoc work in the image (`dbt ls`, `dbt run-operation`, `dbt --version`): the
same settings, rendered profile and secrets as `run`, without phases or reports.
"""

from __future__ import annotations

import os

from entrypoint.errors import ExitCode
from entrypoint.pipeline import dbt_environment
from entrypoint.profiles import check_adapter, prepare_profile
from entrypoint.project import prepare_project
from entrypoint.settings import load_settings

# Arguments that need no project at all.
_STANDALONE = {"--version", "-v", "--help", "-h", "init"}


def run_dbt(args: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    env = {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    }
    if args and not _STANDALONE.intersection(args[:1]):
        settings = load_settings()
        run_dir = settings.work_dir / "runs" / settings.run_id
        project = prepare_project(settings.project_dir, settings.work_dir)
        check_adapter(settings, project)
        profile = prepare_profile(settings, project, run_dir)
        env |= {
            "DBT_PROJECT_DIR": str(project.dir),
            "DBT_PROFILES_DIR": str(profile.dir),
            **profile.env,
        }
        if profile.target:
            env["DBT_TARGET"] = profile.target
    with dbt_environment(env):
        result = dbtRunner().invoke(args)
    if result.success:
        return ExitCode.SUCCESS
    return ExitCode.DBT_ERROR if result.exception is not None else ExitCode.DBT_FAILURES
