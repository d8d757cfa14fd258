"""Preflight: what can be checked before dbt starts, is checked before dbt starts.

A job that would fail after an hour of building because its artifacts bucket is
missing, its work folder is not writable or its profile names an adapter the image
lacks, fails in seconds instead, naming the setting and the fix:

- the work folder (DBT_RUNNER_WORK_DIR) is a writable folder (exit 3);
- the adapter of the profile is installed in this image (exit 3);
- the artifacts storage, and the state storage when the run may promote, accept a
  write (exit 4, naming the bucket and the permission);
- the env's lease is taken, for a run that writes to the warehouse (lease.py).
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

from dbt_runner.config import WRITING_PHASES, Settings
from dbt_runner.errors import ConfigError, InfraError
from dbt_runner.state.lease import Holder, Lease, take_lease
from dbt_runner.state.store import open_state
from dbt_runner.storage import Storage, Storages
from dbt_runner.storage.keys import run_key
from dbt_runner.workspace.profiles import check_profile
from dbt_runner.workspace.project import Project

MARKER = ".dbt-runner-preflight"


def check_work_dir(settings: Settings) -> None:
    """DBT_RUNNER_WORK_DIR must be a folder this user can write (the run's scratch)."""
    folder = settings.run_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=MARKER):
            pass
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InfraError(
                f"DBT_RUNNER_WORK_DIR='{settings.work_dir}': no space left on its device; "
                "give the job more disk or point it at a larger folder"
            ) from exc
        raise ConfigError(
            f"DBT_RUNNER_WORK_DIR='{settings.work_dir}' is not a writable folder "
            f"({exc.strerror or exc}); point it at one this user can write, such as "
            f"{Path(tempfile.gettempdir()) / 'dbt-runner'}"
        ) from exc


def check_storage(storage: Storage, project: str, env: str, run_id: str) -> None:
    """A cheap write-and-delete in this run's own folder, before anything depends on it.
    `storage`: the storage to check; `project`, `env` and `run_id`: the run's folder in it."""
    storage.check_writable(run_key(project, env, run_id, MARKER))


def run_preflight(
    settings: Settings, project: Project, may_promote: bool, storages: Storages
) -> None:
    """Every check, cheapest first; the first problem raises ConfigError or InfraError
    (`ArtifactsUnwritable` when it is the artifacts storage, which then gets no more
    writes from this run). `settings` and `project`: the run's; `may_promote`: its job
    may become the state (then the state storage must take a write); `storages`: the
    run's."""
    check_work_dir(settings)
    check_profile(settings, project)
    try:
        check_storage(storages.artifacts, project.name, settings.env, settings.run_id)
    except InfraError as exc:
        raise ArtifactsUnwritable(exc.message) from exc
    state = open_state(settings, project.name, settings.env, storages.state)
    if may_promote and state is not None:
        state.check_writable(settings.run_id)


def lease_for(
    settings: Settings, project: Project, job: str, storages: Storages
) -> Lease | Holder | None:
    """The env's lease for a run that writes to the warehouse (None for one that does
    not), or the run that holds it when this one is to be skipped. `settings`,
    `project`, `job` and `storages`: the run's."""
    if not WRITING_PHASES & set(settings.job_phases):
        return None
    return take_lease(settings, project.name, job, storages.lease)


class ArtifactsUnwritable(InfraError):
    """The artifacts storage refused a write before dbt started."""
