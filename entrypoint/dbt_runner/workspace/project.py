"""The dbt project: its name and profile, and a writable place for dbt to run it.

dbt writes into the project folder (`dbt_packages/`, `package-lock.yml`). When the
folder is read-only (a read-only mount, an image run under another UID), the run works
on a copy inside the work folder instead, and dbt runs there: relative paths in the
project's own profiles.yml (a DuckDB file) resolve inside the copy, as plain dbt
resolves them from the folder it runs in.
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

from dbt_runner.errors import ConfigError, disk_full, yaml_problem

log = logging.getLogger(__name__)

PACKAGE_FILES = ("packages.yml", "dependencies.yml")
INSTALLED_PACKAGES = "dbt_packages"
# Kept in a read-only project's copy across runs (names and suffixes).
KEPT = {INSTALLED_PACKAGES, ".duckdb", ".wal"}
# dbt's outputs and tooling, never worth copying (installed packages are kept).
_NOT_COPIED = ("target", "logs", ".git", ".venv", "__pycache__", ".dbt-runner")


@dataclass(frozen=True)
class Project:
    source_dir: Path  # where the project lives
    dir: Path  # where dbt runs it: source_dir, or a writable copy of it
    name: str
    profile: str

    @property
    def has_packages(self) -> bool:
        return project_has_packages(self.dir)


def project_has_packages(project_dir: Path) -> bool:
    """Whether the project depends on packages (dbt deps has work)."""
    return any((project_dir / name).is_file() for name in PACKAGE_FILES)


def read_project(project_dir: Path) -> tuple[str, str]:
    """The project's name and profile name, from dbt_project.yml."""
    path = project_dir / "dbt_project.yml"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{yaml_problem(path, exc)}; fix dbt_project.yml") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{path}:1:1: no 'name'; every dbt project needs one")
    name = data["name"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"{path}: name '{name}' must be letters, digits and underscores")
    profile = data.get("profile") or name
    return name, str(profile)


def _working_copy(project_dir: Path, work_dir: Path, name: str) -> Path | None:
    """Where a read-only project is copied: a path that depends only on where it came
    from, so dbt's partial parse (which records absolute paths) stays valid across runs.
    None when the project folder is writable and dbt runs it in place."""
    if os.access(project_dir, os.W_OK):
        return None
    digest = hashlib.sha256(str(project_dir).encode()).hexdigest()[:12]
    return work_dir / "projects" / f"{name}-{digest}"


def describe_project(project_dir: Path, work_dir: Path | None = None) -> Project:
    """The project, and where dbt would run it, without copying anything (check, plan)."""
    name, profile = read_project(project_dir)
    copy = _working_copy(project_dir, work_dir, name) if work_dir is not None else None
    return Project(source_dir=project_dir, dir=copy or project_dir, name=name, profile=profile)


def prepare_project(project_dir: Path, work_dir: Path) -> Project:
    """Read the project and make sure dbt can write where it runs: a read-only project
    is copied (keeping what dbt and DuckDB wrote into an earlier copy)."""
    project = describe_project(project_dir, work_dir)
    if project.dir == project_dir:
        return project
    try:
        _refresh_copy(project_dir, project.dir)
    except OSError as exc:
        if disk_full(exc):
            raise
        raise ConfigError(
            f"DBT_RUNNER_WORK_DIR='{work_dir}': cannot copy the read-only project there "
            f"({exc.strerror or exc}); point it at a writable folder"
        ) from exc
    log.info("project folder %s is read-only: running from a copy in %s", project_dir, project.dir)
    return project


def _kept_outputs(copy: Path) -> list[str]:
    """What earlier runs wrote into the copy that the next run needs: installed
    packages, and DuckDB files a profile placed beside the project (relative paths)."""
    if not copy.is_dir():
        return []
    return [path.name for path in copy.iterdir() if path.name in KEPT or path.suffix in KEPT]


def _refresh_copy(source: Path, copy: Path) -> None:
    """Make `copy` hold exactly `source`, plus the outputs earlier runs left in it."""
    kept = copy.parent / f".{copy.name}.kept"
    shutil.rmtree(kept, ignore_errors=True)
    names = [name for name in _kept_outputs(copy) if not (source / name).exists()]
    if names:
        kept.mkdir(parents=True)
        for name in names:
            (copy / name).rename(kept / name)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    for name in names:
        (kept / name).rename(copy / name)
    shutil.rmtree(kept, ignore_errors=True)


def repository_prefix(project_path: Path) -> str:
    """The project folder relative to the repository (GITHUB_WORKSPACE), ending in `/`:
    what turns a node's or a file's path in the project into one a workflow's
    annotations and test reporters find; empty outside a workflow, or when the project
    is not under the workspace (paths stay relative to the project)."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return ""
    try:
        relative = project_path.resolve().relative_to(Path(workspace).resolve())
    except ValueError:
        return ""
    return "" if relative == Path() else relative.as_posix() + "/"
