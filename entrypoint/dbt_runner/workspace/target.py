"""The target: which warehouse, and where in it, a run's relations go, as dbt itself
resolves the profile (its renderer, the adapter's own credentials class and defaults).

Recorded in the report and with every promoted state, so that a state is only ever
used against the warehouse it describes (ledger.py). Never a secret: the adapter, the
server or file, the database and the schema.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbt_runner.report.parts import MEMORY, Target, has_scheme

log = logging.getLogger(__name__)


def vanishes(target: Target, scratch: Path, mountinfo: str | None = None) -> str | None:
    """Why nothing `target` holds outlives the run, if so: an in-memory DuckDB
    database, a file inside the runner's scratch folder (`scratch`), or one on a
    container's own writable layer (`mountinfo`: /proc/self/mountinfo's text, read when
    None)."""
    if target.adapter == "duckdb" and target.location == MEMORY:
        return "an in-memory DuckDB database: nothing it holds outlives the run"
    path = target.duckdb_file()
    if path is not None and path.is_relative_to(scratch):
        return (
            f"the DuckDB database {path} is inside the runner's scratch folder "
            f"(DBT_RUNNER_WORK_DIR, {scratch}), which goes with the container: set "
            "DBT_RUNNER_WAREHOUSE__PATH, or an absolute path in profiles.yml, to a "
            "persistent volume"
        )
    if path is not None and on_container_layer(path, mountinfo):
        return (
            f"the DuckDB database {path} is on the container's own filesystem (its "
            "writable layer), which goes with the container: mount a volume at its "
            "folder, or set DBT_RUNNER_WAREHOUSE__PATH (or the path in profiles.yml) "
            "to a file on one"
        )
    return None


# Root filesystems that are a container's writable layer (docker, containerd, podman).
LAYER_FILESYSTEMS = {"overlay", "aufs", "fuse-overlayfs"}


def on_container_layer(path: Path, mountinfo: str | None = None) -> bool:
    """Whether `path` lies on a container's own writable layer: the mount holding it is
    the root filesystem, and that is an overlay. A bind mount or a volume over its
    folder keeps it; so does any machine that is not a container."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return False
    mounts = dict(_mounts(mountinfo))
    holder = max(
        (point for point in mounts if path == Path(point) or path.is_relative_to(point)),
        key=len,
        default=None,
    )
    return holder == "/" and mounts[holder] in LAYER_FILESYSTEMS


def _mounts(mountinfo: str) -> Iterator[tuple[str, str]]:
    """(mount point, filesystem type) of each line of /proc/self/mountinfo."""
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts, after = fields.split(), rest.split()
        if len(parts) >= 5 and after:
            yield parts[4].replace("\\040", " "), after[0]


def resolve_target(
    profiles: dict[str, Any],
    profile: str,
    target: str | None,
    project_dir: Path,
    cli_vars: dict[str, Any],
) -> Target:
    """The target of `profile` in `profiles` (profiles.yml's content), rendered as dbt
    renders it (env_var() reads this process's environment: call it inside the dbt
    environment) into the adapter's own credentials. Relative DuckDB paths are taken
    from `project_dir`, where dbt runs. Raises dbt's own error for a profile dbt could
    not use either.
    `target`: the target's name (None: the profile's default); `cli_vars`: the run's dbt
    vars (a profile may read them)."""
    from dbt.adapters.factory import load_plugin
    from dbt.config.profile import Profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))
    if profile not in profiles:
        raise ValueError(f"no profile '{profile}' in profiles.yml")
    _, data = Profile.render_profile(profiles[profile], profile, target, ProfileRenderer(cli_vars))
    data = dict(data)
    adapter = str(data.pop("type"))
    data.pop("threads", None)
    credentials_class = load_plugin(adapter)
    fields = credentials_class.translate_aliases(data)
    credentials_class.validate(fields)
    credentials = credentials_class.from_dict(fields)
    return Target(
        adapter=adapter,
        location=_location(adapter, credentials, project_dir),
        database=_text(getattr(credentials, "database", None)),
        schema=_text(getattr(credentials, "schema", None)),
    )


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _location(adapter: str, credentials: Any, project_dir: Path) -> str:
    if adapter == "duckdb" and not getattr(credentials, "remote", None):
        path = str(credentials.path or MEMORY)
        if path == MEMORY or has_scheme(path):
            return path
        return str((project_dir / Path(path).expanduser()).resolve())
    host, port = getattr(credentials, "host", None), getattr(credentials, "port", None)
    if host:
        return f"{host}:{port}" if port else str(host)
    return str(credentials.unique_field)
