"""Profile: the project's own profiles.yml, or one rendered for the chosen adapter.

A rendered profile holds no secret: secret fields are `{{ env_var(...) }}` references
to `DBT_ENV_SECRET_*` variables, which the runner sets in its own process (dbt runs
in-process) and which dbt scrubs from its logs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from entrypoint.errors import ConfigError
from entrypoint.project import Project
from entrypoint.settings import Adapter, Settings

log = logging.getLogger(__name__)

PASSWORD_ENV = "DBT_ENV_SECRET_WAREHOUSE_PASSWORD"  # noqa: S105 (a variable name)
# Fetched credentials, for a project's own profiles.yml: {{ env_var('DBT_WAREHOUSE_HOST') }}.
EXPORTED = ("host", "port", "user", "database", "schema", "project", "keyfile")
DEFAULT_PORTS = {Adapter.POSTGRES: 5432, Adapter.REDSHIFT: 5439}
DEFAULT_THREADS = 4
VARIANTS_WITH = {
    Adapter.DUCKDB: "all",
    Adapter.POSTGRES: "all or redshift",
    Adapter.REDSHIFT: "all or redshift",
    Adapter.BIGQUERY: "all or bigquery",
}


@dataclass
class Profile:
    """Where dbt finds its profile, and the environment the profile reads."""

    dir: Path
    rendered: bool
    target: str | None
    adapter: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # set before dbt runs; may hold secrets


def adapter_installed(adapter: str) -> bool:
    return importlib.util.find_spec(f"dbt.adapters.{adapter}") is not None


def existing_profiles_dir(settings: Settings, project: Project) -> Path | None:
    """A folder with a profiles.yml to use as is: explicit, dbt's own variable, the project."""
    if settings.profiles_dir is not None:
        return settings.profiles_dir
    from_dbt = os.environ.get("DBT_PROFILES_DIR")
    if from_dbt and (Path(from_dbt) / "profiles.yml").is_file():
        return Path(from_dbt).resolve()
    if (project.dir / "profiles.yml").is_file():
        return project.dir
    return None


def check_adapter(settings: Settings, project: Project) -> None:
    """Fail before anything runs when the rendered profile's adapter is missing."""
    if existing_profiles_dir(settings, project) is not None:
        return
    adapter = settings.warehouse.type
    if not adapter_installed(adapter.value):
        raise ConfigError(
            f"DBT_RUNNER_WAREHOUSE__TYPE='{adapter.value}': the dbt-{adapter.value} adapter "
            f"is not installed here; use an image variant that has it ({VARIANTS_WITH[adapter]})"
        )


def _required(value: Any, setting: str, adapter: Adapter, what: str) -> Any:
    if value in (None, ""):
        raise ConfigError(
            f"DBT_RUNNER_WAREHOUSE__{setting} is required for {adapter.value}: set it to {what}"
            " (or use a credentials source that provides it)"
        )
    return value


def render_output(
    settings: Settings, project: Project, fetched: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile output for the adapter, and the secret environment it reads.

    `fetched` holds connection fields from a credentials source; explicit
    DBT_RUNNER_WAREHOUSE__* settings take precedence over them.
    """
    wh = settings.warehouse
    fields: dict[str, Any] = dict(fetched or {})
    for name in ("host", "port", "user", "database", "schema_", "path", "project", "keyfile"):
        value = getattr(wh, name)
        if value is not None:
            fields[name.rstrip("_")] = value
    if wh.password is not None:
        fields["password"] = wh.password.get_secret_value()

    adapter = wh.type
    threads = settings.threads or DEFAULT_THREADS
    env: dict[str, str] = {}
    output: dict[str, Any] = {"type": adapter.value, "threads": threads}

    if adapter is Adapter.DUCKDB:
        path = fields.get("path") or settings.work_dir / f"{project.name}-{settings.env}.duckdb"
        output["path"] = str(Path(path).expanduser().resolve())
        if fields.get("schema"):
            output["schema"] = fields["schema"]
    elif adapter in (Adapter.POSTGRES, Adapter.REDSHIFT):
        output.update(
            host=_required(fields.get("host"), "HOST", adapter, "the server's host name"),
            port=int(fields.get("port") or DEFAULT_PORTS[adapter]),
            user=_required(fields.get("user"), "USER", adapter, "the database user"),
            dbname=_required(fields.get("database"), "DATABASE", adapter, "the database name"),
            schema=fields.get("schema") or "public",
            password="{{ env_var('" + PASSWORD_ENV + "', '') }}",
        )
        env[PASSWORD_ENV] = str(fields.get("password") or "")
        if wh.sslmode:
            output["sslmode"] = wh.sslmode
    elif adapter is Adapter.BIGQUERY:
        output.update(
            project=_required(fields.get("project"), "PROJECT", adapter, "the GCP project id"),
            dataset=_required(fields.get("schema"), "SCHEMA", adapter, "the BigQuery dataset"),
        )
        keyfile = fields.get("keyfile")
        if keyfile:
            output.update(method="service-account", keyfile=str(keyfile))
        else:
            # Application default credentials: GKE workload identity, gcloud, metadata server.
            output["method"] = wh.method or "oauth"
        if wh.location:
            output["location"] = wh.location
    output.update(wh.extra)
    return output, env


def exported_env(fetched: dict[str, Any]) -> dict[str, str]:
    """Fetched credentials as variables a project's own profiles.yml can read."""
    env = {
        f"DBT_WAREHOUSE_{name.upper()}": str(fetched[name]) for name in EXPORTED if name in fetched
    }
    if fetched.get("password"):
        env[PASSWORD_ENV] = str(fetched["password"])
    return env


def prepare_profile(
    settings: Settings, project: Project, run_dir: Path, fetched: dict[str, Any] | None = None
) -> Profile:
    """Use the project's profiles.yml, or render one into the run's scratch folder."""
    existing = existing_profiles_dir(settings, project)
    if existing is not None:
        if settings.warehouse.model_fields_set:
            log.warning(
                "DBT_RUNNER_WAREHOUSE__* settings are ignored: using %s/profiles.yml", existing
            )
        env = exported_env(fetched or {})
        return Profile(dir=existing, rendered=False, target=settings.target, env=env)

    target = settings.target or settings.env
    output, env = render_output(settings, project, fetched)
    profile = {project.profile: {"target": target, "outputs": {target: output}}}
    profiles_dir = run_dir / "profiles"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return Profile(
        dir=profiles_dir,
        rendered=True,
        target=target,
        adapter=settings.warehouse.type.value,
        env=exported_env(fetched or {}) | env,
    )
