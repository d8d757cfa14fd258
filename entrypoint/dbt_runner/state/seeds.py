"""Seeds dbt cannot compare. Over 1 MiB, dbt records a seed's path instead of a hash of
its rows, so `state:modified` does not see an edit to it (dbt's caveats to state
comparison): a slim job would keep the old rows and promote a state saying it holds the
new ones. The state records a digest of each such file; a job that compares with the
state builds each that changed since, and what reads it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class UnhashedSeed(BaseModel):
    """A seed dbt records by path, and its file's digest when the state was kept."""

    path: str  # relative to the project folder (absolute when outside it)
    digest: str


def unhashed_seeds(manifest: Any, project_dir: Path) -> dict[str, UnhashedSeed]:
    """The seeds dbt recorded by path in `manifest`, by selector (fqn:...)."""
    found: dict[str, UnhashedSeed] = {}
    for node in manifest.nodes.values():
        if node.resource_type != "seed" or node.checksum.name != "path":
            continue
        file = Path(node.root_path) / node.original_file_path
        digest = file_digest(file)
        if digest is None:
            continue  # no file: dbt could not have loaded it either
        relative = file.relative_to(project_dir) if file.is_relative_to(project_dir) else file
        found["fqn:" + ".".join(node.fqn)] = UnhashedSeed(path=str(relative), digest=digest)
    return found


def changed_seeds(recorded: dict[str, UnhashedSeed], project_dir: Path) -> list[str]:
    """Selectors of the recorded seeds whose file differs now, with what reads them."""
    return sorted(
        f"{selector}+"
        for selector, seed in recorded.items()
        if file_digest(project_dir / seed.path) != seed.digest
    )


def file_digest(path: Path) -> str | None:
    """The file's sha256, None when it is gone."""
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except FileNotFoundError:
        return None
