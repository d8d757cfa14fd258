"""The project's installed packages: whether `dbt deps` would change anything.

`dbt deps` installs what package-lock.yml pins. When the package files are what they
were at the last install in this folder, every package it installed is still there,
and the lock pins each git package to a commit, a run skips it: the same packages,
without the network (and 0.2 s of a slim job). A local package is a link to the
project's own folder, so its changes need no install.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

MARKER = ".dbt-runner-installed.json"
PACKAGE_FILES = ("packages.yml", "dependencies.yml", "package-lock.yml")
COMMIT = re.compile(r"[0-9a-f]{40}")


def install_path(project_dir: Path) -> Path | None:
    """Where dbt installs the packages (`packages-install-path`); None when it is
    templated (only dbt can say)."""
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    chosen = str(project.get("packages-install-path") or "dbt_packages")
    return None if "{{" in chosen else project_dir / chosen


def _digest(project_dir: Path) -> str:
    found = hashlib.sha256()
    for name in PACKAGE_FILES:
        path = project_dir / name
        if path.is_file():
            found.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return found.hexdigest()


def _pinned(project_dir: Path) -> bool:
    """Whether the lock pins every git package to a commit (a branch moves)."""
    lock = project_dir / "package-lock.yml"
    if not lock.is_file():
        return False
    packages = (yaml.safe_load(lock.read_text()) or {}).get("packages") or []
    return all(
        COMMIT.fullmatch(str(package.get("revision", "")))
        for package in packages
        if "git" in package
    )


def unchanged_since_install(project_dir: Path) -> bool:
    """The packages installed here are the ones `dbt deps` would install now."""
    folder = install_path(project_dir)
    if folder is None or not (folder / MARKER).is_file():
        return False
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    installed = all((folder / name).exists() for name in marker.get("packages", []))
    return marker.get("digest") == _digest(project_dir) and installed and _pinned(project_dir)


def remember_install(project_dir: Path) -> None:
    """After a `dbt deps` that succeeded: what it installed, from which package files."""
    folder = install_path(project_dir)
    if folder is None or not folder.is_dir():
        return
    packages = sorted(path.name for path in folder.iterdir() if path.name != MARKER)
    marker = {"digest": _digest(project_dir), "packages": packages}
    try:
        (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    except OSError:  # a read-only install: the next run installs again, as dbt would
        return
