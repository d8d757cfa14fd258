"""Profile: an existing profiles.yml, or one rendered for the chosen adapter.

Which one is DBT_RUNNER_PROFILE_SOURCE's choice (`auto`: an explicit folder, dbt's
own DBT_PROFILES_DIR, the project's, else rendered). Either way the adapter it names
must be in the image, checked before anything runs. A rendered profile holds no
secret: secret fields are `{{ env_var(...) }}` references to `DBT_ENV_SECRET_*`
variables, which the runner sets in its own process (dbt runs in-process) and which
dbt scrubs from its logs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbt_runner import aws
from dbt_runner.config import Adapter, ProfileSource, Settings
from dbt_runner.errors import ConfigError, yaml_problem
from dbt_runner.workspace.credentials import redshift_iam
from dbt_runner.workspace.namespace import Namespace, pr_schema, pull_request_profile, valid_root
from dbt_runner.workspace.project import Project

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
    namespace: Namespace | None = None  # a pull request's schemas
    document: dict[str, Any] | None = None  # profiles.yml as the runner writes it


def adapter_installed(adapter: str) -> bool:
    return importlib.util.find_spec(f"dbt.adapters.{adapter}") is not None


def existing_profiles_dir(settings: Settings, project: Project) -> Path | None:
    """A folder with a profiles.yml to use as is: explicit, dbt's own variable, the
    project's; None when the profile is to be rendered."""
    if settings.profile_source is ProfileSource.RENDERED:
        return None
    if settings.profiles_dir is not None:
        return settings.profiles_dir
    from_dbt = os.environ.get("DBT_PROFILES_DIR")
    if from_dbt and (Path(from_dbt) / "profiles.yml").is_file():
        return Path(from_dbt).resolve()
    if (project.source_dir / "profiles.yml").is_file():
        return project.dir  # the copy's, when dbt runs a copy
    if settings.profile_source is ProfileSource.EXISTING:
        raise ConfigError(
            "DBT_RUNNER_PROFILE_SOURCE=existing: no profiles.yml in DBT_RUNNER_PROFILES_DIR, "
            f"DBT_PROFILES_DIR or the project ({project.source_dir}); add one, or set it to "
            "auto to render one from DBT_RUNNER_WAREHOUSE__*"
        )
    return None


def existing_adapter(profiles_dir: Path, project: Project, target: str | None) -> str | None:
    """The adapter type the existing profile's target names; None when it cannot be
    read here (dbt then reports the problem in its own words)."""
    if profiles_dir == project.dir:
        profiles_dir = project.source_dir  # the copy may not exist yet (check, plan)
    try:
        data = yaml.safe_load((profiles_dir / "profiles.yml").read_text())
        profile = data[project.profile]
        output = profile["outputs"][target or profile["target"]]
        adapter = output["type"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    if not isinstance(adapter, str) or "{{" in adapter:
        return None  # Jinja: only dbt can render it
    return adapter


def _missing_adapter(adapter: str, where: str, fix: str) -> ConfigError:
    variants = VARIANTS_WITH.get(Adapter(adapter)) if adapter in set(Adapter) else None
    has_it = (
        f"use an image variant that has it ({variants})"
        if variants
        else ("no dbt-runner variant has it: build an image FROM dbt-runner that installs it")
    )
    return ConfigError(f"{where}: the dbt-{adapter} adapter is not installed here; {has_it}{fix}")


def check_profile(settings: Settings, project: Project) -> None:
    """Fail before anything runs when the profile is not valid YAML, would leave
    warehouse settings unused, or names an adapter the image lacks."""
    check_profile_yaml(settings, project)
    check_profile_source(settings, project)
    check_adapter(settings, project)


def check_profile_yaml(settings: Settings, project: Project) -> None:
    """An existing profiles.yml that does not parse: its file, line and column."""
    existing = existing_profiles_dir(settings, project)
    if existing is None:
        return
    path = (project.source_dir if existing == project.dir else existing) / "profiles.yml"
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{yaml_problem(path, exc)}; fix profiles.yml") from None
    except OSError:
        return  # dbt says why in its own words


def check_adapter(settings: Settings, project: Project) -> None:
    """Fail before anything runs when the profile's adapter is not in the image."""
    existing = existing_profiles_dir(settings, project)
    if existing is None:
        rendered = settings.warehouse.type.value
        if not adapter_installed(rendered):
            raise _missing_adapter(rendered, f"DBT_RUNNER_WAREHOUSE__TYPE='{rendered}'", "")
        return
    adapter = existing_adapter(existing, project, settings.target)
    if adapter is not None and not adapter_installed(adapter):
        shown = project.source_dir if existing == project.dir else existing
        where = f"{shown / 'profiles.yml'} (profile '{project.profile}')"
        fix = ", or set DBT_RUNNER_PROFILE_SOURCE=rendered to render one from " + (
            "DBT_RUNNER_WAREHOUSE__*"
        )
        raise _missing_adapter(adapter, where, fix)


def _required(value: Any, setting: str, adapter: Adapter, what: str) -> Any:
    if value in (None, ""):
        raise ConfigError(
            f"DBT_RUNNER_WAREHOUSE__{setting} is required for {adapter.value}: set it to {what}"
            " (or use a credentials source that provides it)"
        )
    return value


def _target_schema(settings: Settings, schema: str) -> str:
    """The target's schema, or a pull request's under DBT_RUNNER_PR_SCHEMA."""
    return pr_schema(settings.pr_schema, schema, settings.pr) if settings.pr else schema


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
    output: dict[str, Any] = {"type": wh.type.value, "threads": settings.threads or DEFAULT_THREADS}
    env: dict[str, str] = {}
    if wh.type is Adapter.DUCKDB:
        output |= _duckdb_output(settings, project, fields)
    elif wh.type in (Adapter.POSTGRES, Adapter.REDSHIFT):
        output |= _server_output(settings, wh.type, fields)
        if "password" in output:  # not with dbt-redshift's own IAM login
            env[PASSWORD_ENV] = str(fields.get("password") or "")
    elif wh.type is Adapter.BIGQUERY:
        output |= _bigquery_output(settings, fields)
    output.update(wh.extra)
    return output, env


def _duckdb_output(settings: Settings, project: Project, fields: dict[str, Any]) -> dict[str, Any]:
    path = fields.get("path") or settings.work_dir / f"{project.name}-{settings.env}.duckdb"
    output: dict[str, Any] = {"path": str(Path(path).expanduser().resolve())}
    if fields.get("schema") or settings.pr:
        output["schema"] = _target_schema(settings, fields.get("schema") or "main")
    return output


def native_redshift_iam(settings: Settings) -> bool:
    """A rendered Redshift profile with a Redshift IAM source logs in with dbt-redshift's
    own IAM method: fresh credentials for every connection opened after the last ones
    expired."""
    creds = settings.credentials
    return settings.warehouse.type is Adapter.REDSHIFT and bool(
        creds.redshift_cluster_id or creds.redshift_workgroup
    )


def _server_output(settings: Settings, adapter: Adapter, fields: dict[str, Any]) -> dict[str, Any]:
    """postgres and redshift: the password a reference to the secret variable, or
    dbt-redshift's native IAM method."""
    output = {
        "host": _required(fields.get("host"), "HOST", adapter, "the server's host name"),
        "port": int(fields.get("port") or DEFAULT_PORTS[adapter]),
    }
    if native_redshift_iam(settings):
        output |= _redshift_iam_output(settings)
    else:
        output["user"] = _required(fields.get("user"), "USER", adapter, "the database user")
    output |= {
        "dbname": _required(fields.get("database"), "DATABASE", adapter, "the database name"),
        "schema": _target_schema(settings, fields.get("schema") or "public"),
    }
    if "method" not in output:
        output["password"] = "{{ env_var('" + PASSWORD_ENV + "', '') }}"
    if settings.warehouse.sslmode:
        output["sslmode"] = settings.warehouse.sslmode
    return output


def _redshift_iam_output(settings: Settings) -> dict[str, Any]:
    """dbt-redshift's IAM fields, in the region of the runner's AWS session (the task
    role's credentials come through the default chain)."""
    creds = settings.credentials
    output = redshift_iam.iam_profile_fields(
        cluster_id=creds.redshift_cluster_id,
        workgroup=creds.redshift_workgroup,
        db_user=creds.redshift_db_user,
        auto_create=creds.redshift_auto_create,
    )
    region = aws.region()
    if region:
        output["region"] = region
    return output


def _bigquery_output(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    adapter, wh = Adapter.BIGQUERY, settings.warehouse
    dataset = _required(fields.get("schema"), "SCHEMA", adapter, "the BigQuery dataset")
    output: dict[str, Any] = {
        "project": _required(fields.get("project"), "PROJECT", adapter, "the GCP project id"),
        "dataset": _target_schema(settings, dataset),
    }
    keyfile = fields.get("keyfile")
    if keyfile:
        output.update(method="service-account", keyfile=str(keyfile))
    else:
        # Application default credentials: GKE workload identity, gcloud, metadata server.
        output["method"] = wh.method or "oauth"
    if wh.location:
        output["location"] = wh.location
    return output


def exported_env(fetched: dict[str, Any]) -> dict[str, str]:
    """Fetched credentials as variables a project's own profiles.yml can read."""
    env = {
        f"DBT_WAREHOUSE_{name.upper()}": str(fetched[name]) for name in EXPORTED if name in fetched
    }
    if fetched.get("password"):
        env[PASSWORD_ENV] = str(fetched["password"])
    return env


def describe_profile(settings: Settings, project: Project, run_dir: Path) -> Profile:
    """Where the run's profile is, or will be rendered, without writing anything. A
    pull request's copy of an existing profile goes where a rendered one would. The
    profile's content is known ahead (`document`) unless it is the project's own file,
    or a rendered one that waits for credentials fetched at run time."""
    existing = existing_profiles_dir(settings, project)
    if existing is not None:
        adapter = existing_adapter(existing, project, settings.target)
        profile = Profile(dir=existing, rendered=False, target=settings.target, adapter=adapter)
        if settings.pr:
            _pull_request_copy(settings, project, profile, run_dir / "profiles")
        return profile
    target = settings.target or settings.env
    adapter = settings.warehouse.type.value
    profile = Profile(dir=run_dir / "profiles", rendered=True, target=target, adapter=adapter)
    with suppress(ConfigError):  # a field a credentials source provides at run time
        _render(settings, project, profile)
    return profile


def prepare_profile(
    settings: Settings, project: Project, run_dir: Path, fetched: dict[str, Any] | None = None
) -> Profile:
    """Use an existing profiles.yml, or render one into the run's scratch folder.
    `settings`: the run's; `project`: where its own profiles.yml may be; `run_dir`: the
    run's scratch folder; `fetched`: connection fields fetched at run time (credentials)."""
    profile = describe_profile(settings, project, run_dir)
    profile.env = exported_env(fetched or {})
    if profile.rendered:
        output = _render(settings, project, profile, fetched)
        if "path" in output:  # DuckDB creates its file, not the folder it goes in
            Path(output["path"]).parent.mkdir(parents=True, exist_ok=True)
    if profile.document is not None:
        profile.dir.mkdir(parents=True, exist_ok=True)
        (profile.dir / "profiles.yml").write_text(yaml.safe_dump(profile.document, sort_keys=False))
    return profile


def _render(
    settings: Settings, project: Project, profile: Profile, fetched: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Render the profile for DBT_RUNNER_WAREHOUSE__* into `profile`; its output."""
    output, env = render_output(settings, project, fetched)
    if settings.pr:
        profile.namespace = Namespace(settings.pr, valid_root(_schema_of(output), settings.pr))
    target = str(profile.target)  # a rendered profile always names its target
    profile.document = {project.profile: {"target": target, "outputs": {target: output}}}
    profile.env |= env
    return output


def _schema_of(output: dict[str, Any]) -> str:
    return str(output.get("dataset") or output.get("schema"))


def _pull_request_copy(
    settings: Settings, project: Project, profile: Profile, folder: Path
) -> None:
    """An existing profile, copied into `folder` with its target's schema made the pull
    request's."""
    pr = str(settings.pr)
    source = profile.dir
    if source == project.dir:
        source = project.source_dir  # the copy's own may not be written yet
    path = source / "profiles.yml"
    data = yaml.safe_load(path.read_text())
    document, target, root = pull_request_profile(
        data, path, project.profile, settings.target, settings.pr_schema, pr
    )
    profile.dir, profile.target, profile.document = folder, target, document
    profile.namespace = Namespace(pr, valid_root(root, pr))


def check_profile_source(settings: Settings, project: Project) -> None:
    """Warehouse settings that an existing profile would leave unused are an error: a
    job set up for PostgreSQL must not run on the project's DuckDB and exit 0."""
    existing = existing_profiles_dir(settings, project)
    explicit = sorted(settings.warehouse.model_fields_set)
    if existing is None or not explicit:
        return
    names = ", ".join(f"DBT_RUNNER_WAREHOUSE__{name.rstrip('_').upper()}" for name in explicit)
    shown = project.source_dir if existing == project.dir else existing
    raise ConfigError(
        f"{names} would be ignored: the run uses {shown / 'profiles.yml'} "
        f"(DBT_RUNNER_PROFILE_SOURCE={settings.profile_source.value}); set "
        "DBT_RUNNER_PROFILE_SOURCE=rendered to use the DBT_RUNNER_WAREHOUSE__* settings, or "
        "unset them to use that file"
    )
