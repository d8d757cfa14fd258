"""Versions of the runner, dbt-core and the installed adapters.

Read from package metadata only, without importing dbt, so `dbt-runner version`
answers faster than `import dbt` alone.
"""

from __future__ import annotations

import re
from importlib import metadata

DIST = "dbt-runner"


def runner_version() -> str:
    """The image's own version: VERSION, recorded in the package metadata at build."""
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def dbt_version() -> str | None:
    try:
        return metadata.version("dbt-core")
    except metadata.PackageNotFoundError:
        return None


def adapters() -> dict[str, str]:
    """Installed dbt adapter plugins, as {adapter type: distribution version}."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if not name.startswith("dbt-"):
            continue
        for path in dist.files or ():
            parts = path.parts
            # An adapter plugin ships dbt/adapters/<type>/__init__.py (dbt-adapters ships
            # the shared base packages, which are not adapters).
            if (
                len(parts) == 4
                and parts[:2] == ("dbt", "adapters")
                and parts[3] == "__init__.py"
                and name != "dbt-adapters"
            ):
                found[parts[2]] = dist.version
    return dict(sorted(found.items()))


def packages() -> dict[str, str]:
    """Every Python distribution installed beside the runner, {name: version}: the
    same list the image's SBOM (/opt/dbt-runner/sbom.cdx.json) carries."""
    found = {
        canonical(dist.metadata["Name"] or ""): dist.version for dist in metadata.distributions()
    }
    return dict(sorted(item for item in found.items() if item[0]))


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 (and package URLs) spell it."""
    return re.sub(r"[-_.]+", "-", name).lower()
