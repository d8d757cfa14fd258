"""Workspace: the setup every verb that runs dbt shares, written once.

    project (a writable place) -> adapter check -> credentials -> profile

`open_workspace` is what `run`, `retry` and `dbt` use; `describe_workspace` is the
same answer for `check` and `plan`, without copying, fetching or writing anything, so
what they print is what `run` will use. dbt runs in the project folder (or its copy)
with the profile's environment set in this process; `dbt_context` sets both and puts
them back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dbt_runner.config import Settings
from dbt_runner.engine.invocation import DbtInvocation
from dbt_runner.errors import InfraError
from dbt_runner.report.parts import Inputs, Target
from dbt_runner.workspace import credentials
from dbt_runner.workspace.baked import Baked, ProfileShape, check_baked
from dbt_runner.workspace.inputs import read_inputs
from dbt_runner.workspace.packages import unchanged_since_install
from dbt_runner.workspace.profiles import (
    Profile,
    check_profile,
    describe_profile,
    existing_profiles_dir,
    exported_env,
    native_redshift_iam,
    prepare_profile,
)
from dbt_runner.workspace.project import Project, describe_project, prepare_project
from dbt_runner.workspace.target import resolve_target

log = logging.getLogger(__name__)

Stage = Callable[[str], AbstractContextManager[None]]


def _no_stage(name: str) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass
class Workspace:
    """Where and how dbt runs: the project folder, the profile, the fetched secrets,
    and this run's own target and log folders."""

    settings: Settings
    project: Project
    profile: Profile
    credentials: credentials.Credentials = field(default_factory=credentials.Credentials)
    baked: Baked | None = None  # what `dbt-runner prepare` baked, if anything

    @property
    def target_path(self) -> Path:
        return self._dbt_path("DBT_TARGET_PATH", "target")

    @property
    def log_path(self) -> Path:
        return self._dbt_path("DBT_LOG_PATH", "logs")

    def _dbt_path(self, variable: str, name: str) -> Path:
        """dbt's own variable wins (relative to the project); otherwise each run has its
        own folder, so concurrent runs never share a target."""
        chosen = os.environ.get(variable)
        if not chosen:
            return self.settings.run_dir / name
        path = Path(chosen)
        return path if path.is_absolute() else self.project.dir / path

    def deps_not_needed(self) -> str | None:
        """Why `dbt deps` has nothing to do in this run, or None when it has."""
        if not self.project.has_packages:
            return "no packages.yml or dependencies.yml"
        if self.baked is not None and self.baked.packages:
            return "the packages were installed into the image by dbt-runner prepare"
        if unchanged_since_install(self.project.dir):
            return "the packages are installed and unchanged since the last dbt deps"
        return None

    def inputs(self, env_var_names: Iterable[str]) -> Inputs:
        """What this run's parse reads besides the files, as its dbt sees them."""
        environ = {**os.environ, **self.dbt_env()}
        project_dir = self.project.source_dir  # the copy may not be made yet (plan)
        return read_inputs(project_dir, self.settings.vars, env_var_names, environ)

    def invocation(self) -> DbtInvocation:
        return DbtInvocation(
            project_dir=self.project.dir,
            profiles_dir=self.profile.dir,
            target=self.profile.target,
            vars=self.settings.vars,
        )

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt reads in this process: paths, telemetry, the profile's."""
        stats = os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        return {
            "DBT_TARGET_PATH": str(self.target_path),
            "DBT_LOG_PATH": str(self.log_path),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": stats,
            **self.profile.env,
        }

    def refresh_credentials(self) -> None:
        """Before a dbt command: a fetched Redshift password fetched again, into the
        variables the project's own profile reads (dbt renders it per command)."""
        if self.credentials.refresh is None:
            return
        try:
            fresh = exported_env(self.credentials.refresh())
        except InfraError as exc:  # the password in hand may still do
            log.warning("the Redshift password was not fetched again: %s", exc.message)
            return
        self.profile.env |= fresh
        os.environ.update(fresh)

    def dbt_context(self) -> AbstractContextManager[None]:
        return dbt_environment(self.dbt_env(), cwd=self.project.dir)

    def identify_target(self, name: str | None = None) -> Target | None:
        """The target dbt will build into, from the profile dbt will read (`name`: that
        target of it, not the run's); None (said in the log) when dbt could not read it
        either: its own phases then say why."""
        try:
            document = self.profile.document
            if document is None:
                folder = self.profile.dir
                if folder == self.project.dir and not (folder / "profiles.yml").is_file():
                    folder = self.project.source_dir  # the copy is not made yet (plan)
                document = yaml.safe_load((folder / "profiles.yml").read_text())
            with dbt_environment(self.dbt_env()):  # env_var() in the profile reads it
                return resolve_target(
                    document,
                    self.project.profile,
                    name or self.profile.target,
                    self.project.dir,
                    self.settings.vars,
                )
        except Exception as exc:  # dbt's profile errors, YAML errors, a missing file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.info("the run's target could not be identified: %s", first)
            return None

    def close(self) -> None:
        """Remove the key files written for this run, whatever else is kept."""
        self.credentials.remove_files()


@contextmanager
def dbt_environment(values: dict[str, str], cwd: Path | None = None) -> Iterator[None]:
    """Set variables dbt reads in this process (secrets included) and the folder it
    runs in, then restore both."""
    saved = {name: os.environ.get(name) for name in values}
    previous_cwd = Path.cwd() if cwd is not None else None
    os.environ.update(values)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        if previous_cwd is not None:
            os.chdir(previous_cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def open_workspace(
    settings: Settings, stage: Stage = _no_stage, fetch_credentials: bool = True
) -> Workspace:
    """Prepare the project, check its adapter, fetch credentials (unless building an
    image: `prepare`), write the profile. Each step runs as its own `stage` (the run's
    bookkeeping, or nothing)."""
    with stage("project"):
        project = prepare_project(settings.project_dir, settings.work_dir)
    with stage("profile"):
        check_profile(settings, project)
    fetched = credentials.Credentials()
    with stage("credentials"):
        if fetch_credentials:
            rendered = existing_profiles_dir(settings, project) is None
            native = rendered and native_redshift_iam(settings)
            fetched = credentials.fetch(settings, settings.run_dir / "secrets", native)
    with stage("profile"):
        profile = prepare_profile(settings, project, settings.run_dir, fetched.fields)
    with stage("prepared"):
        baked = look_for_baked(settings, project, profile)
    return Workspace(settings, project, profile, fetched, baked)


def describe_workspace(settings: Settings) -> Workspace:
    """The workspace `open_workspace` would prepare, with nothing copied, fetched or
    written: the folders are the ones a run uses."""
    project = describe_project(settings.project_dir, settings.work_dir)
    check_profile(settings, project)
    profile = describe_profile(settings, project, settings.run_dir)
    return Workspace(settings, project, profile, baked=look_for_baked(settings, project, profile))


def profile_shape(project: Project, profile: Profile) -> ProfileShape:
    """What dbt's parse depends on in the profile: its name, target and adapter."""
    return ProfileShape(name=project.profile, target=profile.target, adapter=profile.adapter or "?")


def look_for_baked(settings: Settings, project: Project, profile: Profile) -> Baked | None:
    """What `dbt-runner prepare` baked for this project, checked against this run."""
    shape = profile_shape(project, profile)
    folder = settings.prepared_folder
    return check_baked(folder, project.source_dir, project.name, shape, settings.vars)
