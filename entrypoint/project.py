"""The dbt project: its name and profile, and a writable place for dbt to run it.

dbt writes into the project folder (`dbt_packages/`, `package-lock.yml`). When the
folder is read-only (a read-only root filesystem, an image run under another UID),
the run works on a copy inside the run's scratch folder instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from entrypoint.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGE_FILES = ("packages.yml", "dependencies.yml")
INSTALLED_PACKAGES = "dbt_packages"
# dbt's outputs and tooling, never worth copying (installed packages are kept).
_NOT_COPIED = ("target", "logs", ".git", ".venv", "__pycache__")


@dataclass(frozen=True)
class Project:
    source_dir: Path  # where the project lives
    dir: Path  # where dbt runs it: source_dir, or a writable copy of it
    name: str
    profile: str

    @property
    def has_packages(self) -> bool:
        return any((self.dir / name).is_file() for name in PACKAGE_FILES)


def read_project(project_dir: Path) -> tuple[str, str]:
    """The project's name and profile name, from dbt_project.yml."""
    path = project_dir / "dbt_project.yml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} cannot be read as YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{path} has no 'name'; every dbt project needs one")
    name = data["name"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"{path}: name '{name}' must be letters, digits and underscores")
    profile = data.get("profile") or name
    return name, str(profile)


def describe_project(project_dir: Path) -> Project:
    """The project as it is, without preparing a place to run it (check, plan)."""
    name, profile = read_project(project_dir)
    return Project(source_dir=project_dir, dir=project_dir, name=name, profile=profile)


def prepare_project(project_dir: Path, work_dir: Path) -> Project:
    """Read the project and make sure dbt can write where it runs.

    A read-only project is copied to a path that depends only on where it came from,
    so dbt's partial parse (which records absolute paths) stays valid across runs, and
    packages installed by an earlier `deps` into the copy are kept.
    """
    name, profile = read_project(project_dir)
    run_in = project_dir
    if not os.access(project_dir, os.W_OK):
        digest = hashlib.sha256(str(project_dir).encode()).hexdigest()[:12]
        run_in = work_dir / "projects" / f"{name}-{digest}"
        try:
            _refresh_copy(project_dir, run_in)
        except OSError as exc:
            raise ConfigError(
                f"DBT_RUNNER_WORK_DIR='{work_dir}': cannot copy the read-only project there "
                f"({exc.strerror or exc}); point it at a writable folder"
            ) from exc
        log.info("project folder %s is read-only: running from a copy in %s", project_dir, run_in)
    return Project(source_dir=project_dir, dir=run_in, name=name, profile=profile)


def _refresh_copy(source: Path, copy: Path) -> None:
    """Make `copy` hold exactly `source`, keeping the packages deps installed into it."""
    installed = copy / INSTALLED_PACKAGES
    kept = copy.parent / f".{copy.name}.packages"
    shutil.rmtree(kept, ignore_errors=True)
    if installed.is_dir() and not (source / INSTALLED_PACKAGES).exists():
        installed.rename(kept)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    if kept.is_dir():
        kept.rename(copy / INSTALLED_PACKAGES)
