"""A project baked into its image by `dbt-runner prepare`: its packages installed and its
parse cache made at build time, with the record of what that parse was made for.

At run time the record is checked against the run before anything is trusted: the
project's files, dbt's and the adapter's versions, the profile's shape (its name,
target and connection fields, which dbt's own parse check hashes), the vars, and the
environment variables the parse read. Anything that differs is said, and the run
parses as if nothing were baked: dbt's cache is only ever a head start, never a
different answer.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from dbt_runner.workspace.inputs import digest, env_digests, vars_digest

log = logging.getLogger(__name__)

RECORD = "prepared.json"
CACHE = "partial_parse.msgpack"
MANIFEST = "manifest.json"
FORMAT = 1
# Never part of what the project is: dbt's outputs, tooling, the baked folder itself.
NOT_HASHED = {"target", "logs", ".git", ".venv", "__pycache__", ".dbt-runner"}


class ProfileShape(BaseModel):
    """The profile a parse was made for (dbt's own check also compares the connection
    fields' values: a difference there is said after the parse, in dbt's words)."""

    name: str
    target: str | None
    adapter: str


class Prepared(BaseModel):
    """prepared.json: what `dbt-runner prepare` baked, and for what."""

    format: int = FORMAT
    prepared_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    runner_version: str
    dbt_version: str
    adapter_version: str | None
    project_dir: str
    project: str
    files: dict[str, str]  # relative path -> sha256 (16 hex digits)
    profile: ProfileShape
    vars: str  # sha256 of the run's dbt vars
    env_vars: dict[str, str | None]  # name -> sha256 of its value, None when unset
    packages: bool  # dbt deps ran: dbt_packages holds them


def project_files(project_dir: Path) -> dict[str, str]:
    """Every file of the project that dbt may read, by its relative path."""
    found: dict[str, str] = {}
    for root, folders, names in os.walk(project_dir):
        folders[:] = sorted(f for f in folders if f not in NOT_HASHED)
        for name in sorted(names):
            path = Path(root) / name
            if path.is_file():
                found[path.relative_to(project_dir).as_posix()] = digest(path.read_bytes())
    return found


# What `dbt deps` reads and writes: when none of it changed, the baked packages hold.
PACKAGE_FILES = ("packages.yml", "dependencies.yml", "package-lock.yml")
INSTALLED = "dbt_packages/"


@dataclass(frozen=True)
class Baked:
    """What a run may use of a baked project, and why not when it may not."""

    folder: Path
    record: Prepared | None
    problem: str | None  # why the parse cache is not used; None when it is
    packages: bool = False  # the packages installed at build time still hold

    def restore(self, target_path: Path) -> bool:
        """Put the baked parse cache where dbt reads it; False when it may not be used."""
        if self.problem is not None:
            return False
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.folder / CACHE, target_path / CACHE)
        return True


def read_baked(folder: Path) -> Prepared | None:
    path = folder / RECORD
    if not path.is_file():
        return None
    return Prepared.model_validate_json(path.read_text())


def why_not(record: Prepared, now: Prepared) -> str | None:
    """The first difference between what was baked and this run, in words."""
    if record.format != FORMAT:
        return f"prepared by another runner ({record.runner_version}): prepare it again"
    adapter = f"dbt-{now.profile.adapter}"
    changed_env = [
        name for name, value in record.env_vars.items() if now.env_vars.get(name) != value
    ]
    differences = [
        (
            record.dbt_version != now.dbt_version,
            f"prepared with dbt {record.dbt_version}, this is dbt {now.dbt_version}",
        ),
        (
            record.adapter_version != now.adapter_version,
            f"prepared with {adapter} {record.adapter_version}, "
            f"this is {adapter} {now.adapter_version}",
        ),
        (
            record.project_dir != now.project_dir,
            f"prepared for the project at {record.project_dir}, this run's is {now.project_dir}",
        ),
        (
            record.profile != now.profile,
            f"prepared for {_shape(record.profile)}, this run's is {_shape(now.profile)}",
        ),
        (record.vars != now.vars, "prepared with other dbt vars (DBT_RUNNER_VARS)"),
        (
            bool(changed_env),
            f"the environment variable(s) {', '.join(changed_env)} differ from prepare time",
        ),
    ]
    found = next((said for differs, said in differences if differs), None)
    return found or _files_changed(record.files, now.files)


def _shape(profile: ProfileShape) -> str:
    return f"profile '{profile.name}', target '{profile.target}' ({profile.adapter})"


def _files_changed(before: dict[str, str], now: dict[str, str]) -> str | None:
    changed = sorted(p for p in before.keys() | now.keys() if before.get(p) != now.get(p))
    if not changed:
        return None
    named = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"the project changed since prepare ({named})"


def adapter_version(adapter: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(f"dbt-{adapter}")
    except metadata.PackageNotFoundError:
        return None


def describe_run(
    project_dir: Path,
    project: str,
    profile: ProfileShape,
    dbt_vars: dict[str, Any],
    env_vars: list[str],
    packages: bool,
) -> Prepared:
    """This run (or this build) as a record: what a baked parse must have been made for.
    `project_dir`: the project's files; `project`: its name; `profile`: the profile's shape;
    `dbt_vars`: the run's vars; `env_vars`: the names of the environment variables the parse
    read; `packages`: whether dbt deps ran."""
    from dbt_runner.versions import dbt_version, runner_version

    return Prepared(
        runner_version=runner_version(),
        dbt_version=dbt_version() or "?",
        adapter_version=adapter_version(profile.adapter),
        project_dir=str(project_dir),
        project=project,
        files=project_files(project_dir),
        profile=profile,
        vars=vars_digest(dbt_vars),
        env_vars=env_digests(env_vars, os.environ),
        packages=packages,
    )


def check_baked(
    folder: Path, project_dir: Path, project: str, profile: ProfileShape, dbt_vars: dict[str, Any]
) -> Baked | None:
    """What this run may use of what `prepare` baked into `folder`; None when nothing
    was baked. A record that cannot be read is a reason, not an error.
    `project_dir`: the project's files now; `project`: its name; `profile`: this run's
    profile's shape; `dbt_vars`: this run's vars."""
    try:
        record = read_baked(folder)
    except (OSError, ValueError) as exc:
        return Baked(folder, None, f"{folder / RECORD} cannot be read ({exc}): prepare again")
    if record is None:
        return None
    now = describe_run(
        project_dir, project, profile, dbt_vars, list(record.env_vars), record.packages
    )
    problem = why_not(record, now)
    if problem is None and not (folder / CACHE).is_file():
        problem = f"{folder / CACHE} is missing: prepare again"
    return Baked(folder, record, problem, record.packages and _same_packages(record, now))


def _same_packages(record: Prepared, now: Prepared) -> bool:
    def packaging(files: dict[str, str]) -> dict[str, str]:
        return {p: d for p, d in files.items() if p in PACKAGE_FILES or p.startswith(INSTALLED)}

    return packaging(record.files) == packaging(now.files)


def write_baked(folder: Path, record: Prepared, target_path: Path) -> None:
    """The parse cache and manifest dbt wrote into `target_path`, and their record."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (CACHE, MANIFEST):
        shutil.copyfile(target_path / name, folder / name)
    (folder / RECORD).write_text(record.model_dump_json(indent=2) + "\n")
