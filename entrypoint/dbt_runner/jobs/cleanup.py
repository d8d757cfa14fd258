"""`dbt-runner cleanup`: drop a pull request's schemas when it closes.

With the same settings as the pull request's runs (DBT_RUNNER_PR and the warehouse),
it prepares the same workspace, so the profile's target schema is the pull request's,
and runs one macro through the profile's dbt adapter: it lists the schemas and drops
the target schema and every schema under it, and nothing else. Dropping what is not
there is not an error: a second cleanup drops nothing and succeeds.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import yaml

from dbt_runner.config import Settings
from dbt_runner.engine.nodes import NodeRecorder
from dbt_runner.engine.session import invoke_dbt
from dbt_runner.engine.startup import import_dbt
from dbt_runner.errors import ConfigError, ExitCode
from dbt_runner.workspace.prepare import dbt_environment, open_workspace

log = logging.getLogger(__name__)

CLEANUP_MACRO = "dbt_runner_drop_pr_schemas"
DROPPED = "dbt-runner dropped schema "


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
            result = invoke_dbt(args, [events])
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


def cleanup_project(folder: Path, profile: str) -> Path:
    """A project of one macro, on the run's profile: it drops the namespace's schemas
    through the adapter (its own list_schemas and drop_schema; no SQL of ours)."""
    (folder / "macros").mkdir(parents=True, exist_ok=True)
    project = {
        "name": "dbt_runner_cleanup",
        "version": "1.0",
        "config-version": 2,
        "profile": profile,
        "macro-paths": ["macros"],
    }
    (folder / "dbt_project.yml").write_text(yaml.safe_dump(project))
    (folder / "macros" / f"{CLEANUP_MACRO}.sql").write_text(
        f"""{{% macro {CLEANUP_MACRO}(root) %}}
  {{% if not root or root | lower != target.schema | lower %}}
    {{{{ exceptions.raise_compiler_error("refusing: the target schema is not " ~ root) }}}}
  {{% endif %}}
  {{% set prefix = root | lower ~ '_' %}}
  {{% for row in list_schemas(target.database) %}}
    {{% set schema = row[0] %}}
    {{% if schema | lower == root | lower or (schema | lower).startswith(prefix) %}}
      {{% do adapter.drop_schema(api.Relation.create(database=target.database, schema=schema)) %}}
      {{{{ log("{DROPPED}" ~ schema, info=true) }}}}
    {{% endif %}}
  {{% endfor %}}
{{% endmacro %}}
"""
    )
    return folder


def cleanup_args(root: str) -> list[str]:
    return ["run-operation", CLEANUP_MACRO, "--args", json.dumps({"root": root})]
