"""`dbt-runner prepare`: bake the project into its image at build time (`RUN
dbt-runner prepare` in a derived image's Dockerfile). Installs the project's packages
(`dbt deps`, the only step that needs the network) and parses it, keeping dbt's parse
cache and manifest with the record of what they were made for
(workspace/baked.py). No warehouse connection, no secret: credentials are not fetched.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from typing import TYPE_CHECKING

from dbt_runner.cli.args import run_settings

if TYPE_CHECKING:
    from dbt_runner.config import Settings
    from dbt_runner.engine.session import DbtSession, Outcome

log = logging.getLogger(__name__)


def prepare_verb(args: argparse.Namespace) -> int:
    settings = run_settings(args)
    try:
        return prepare(settings)
    finally:
        shutil.rmtree(settings.run_dir, ignore_errors=True)


def prepare(settings: Settings) -> int:
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.engine.startup import import_dbt
    from dbt_runner.workspace.baked import describe_run, write_baked
    from dbt_runner.workspace.inputs import env_var_names
    from dbt_runner.workspace.prepare import open_workspace, profile_shape

    started = time.monotonic()
    _writable(settings)
    import_dbt()
    workspace = open_workspace(settings, fetch_credentials=False)
    project = workspace.project
    session = DbtSession(workspace.invocation(), workspace.target_path, workspace.profile.adapter)
    with workspace.dbt_context():
        _deps_and_parse(session, project.has_packages)
    parsed = dict(getattr(session.manifest, "env_vars", None) or {})
    shape = profile_shape(project, workspace.profile)
    record = describe_run(
        project.source_dir,
        project.name,
        shape,
        settings.vars,
        env_var_names(project.source_dir, parsed),
        project.has_packages,
    )
    write_baked(settings.prepared_folder, record, workspace.target_path)
    nodes = len(session.manifest.nodes) if session.manifest is not None else 0
    installed = ", packages installed" if project.has_packages else ""
    log.info(
        "prepared %s for profile '%s', target '%s' (%s): %d nodes parsed%s in %.1f s, into %s",
        project.name,
        shape.name,
        shape.target,
        shape.adapter,
        nodes,
        installed,
        time.monotonic() - started,
        settings.prepared_folder,
    )
    return 0


def _writable(settings: Settings) -> None:
    from dbt_runner.errors import ConfigError

    if not os.access(settings.project_dir, os.W_OK):
        raise ConfigError(
            f"{settings.project_dir} is read-only: prepare installs the packages into the "
            "project, so run it where the project is writable (in a Dockerfile, after "
            "COPY --chown=10001:0)"
        )


def _deps_and_parse(session: DbtSession, packages: bool) -> None:
    """dbt deps (when the project has packages), then the parse and its manifest; the
    first that fails ends prepare with dbt's own words."""
    from dbt_runner.workspace.packages import remember_install

    if packages:
        _succeeded("deps", session.execute("deps", ["deps"], has_nodes=False))
        remember_install(session.invocation.project_dir)
    _succeeded("parse", session.parse())
    session.target_path.mkdir(parents=True, exist_ok=True)
    session.write_manifest()


def _succeeded(name: str, outcome: Outcome) -> None:
    from dbt_runner.errors import dbt_error

    if outcome.status != "success":
        error = dbt_error(name, outcome.message or f"dbt {name} failed")
        raise type(error)(f"prepare: {error.message}")
