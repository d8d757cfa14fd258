"""The checks single settings get, each a plain function of the value (the models
attach them with `field_validator`): what is accepted, and the fix when it is not."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from dbt_runner.config.values import http_url, phase_list
from dbt_runner.storage import normalise_url
from dbt_runner.storage.archive import archive_digest, fetched_folder


def phases(value: Any) -> Any:
    return None if value is None else phase_list(value)


def env_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value):
        raise ValueError(
            "use lower-case letters, digits, '-' or '_', starting with a letter (e.g. prod)"
        )
    return value


def run_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value):
        raise ValueError("use letters, digits, '.', '-' or '_' (it becomes part of paths)")
    return value


def metrics_namespace(value: str) -> str:
    """CloudWatch's rules for a namespace: it refuses the rest, and the metrics are lost."""
    if value.startswith("AWS/"):
        raise ValueError("'AWS/' namespaces are reserved for AWS; use e.g. dbt-runner")
    if not re.fullmatch(r"[0-9A-Za-z.\-_/#:]+", value):
        raise ValueError(
            "use letters, digits and '.', '-', '_', '/', '#', ':' only (ASCII, no spaces), "
            "e.g. data-platform/dbt"
        )
    return value


def pull_request(value: str | None) -> str | None:
    if not value:  # unset, or empty (a workflow's push event has no pull request)
        return None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", value):
        raise ValueError(
            "use the pull request's number or a branch-safe name (letters, digits, '-', '_')"
        )
    # Part of schema names, and never an underscore: then no pull request's schemas can
    # start with another's (`feature` and `feature_2` would: workspace/namespace.py).
    name = re.sub(r"[-_]", "", value.lower())
    if name == value:
        return name
    # Normalising changed it: a short digest of the name as given keeps distinct names
    # apart (`feature-2`, `Feature2` and `feature_2` are three pull requests).
    return name + hashlib.sha256(value.encode()).hexdigest()[:6]


def pr_schema(value: str) -> str:
    if "{schema}" not in value or "{pr}" not in value:
        raise ValueError("must contain {schema} and {pr}, e.g. '{schema}_pr_{pr}'")
    return value


def dbt_vars(value: Any) -> Any:
    """dbt's own --vars takes YAML, of which JSON is a subset."""
    example = """expected a mapping such as '{"start_date": "2026-01-01"}'"""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise ValueError(f"not valid JSON or YAML ({problem}); {example}") from None
    if not isinstance(value, dict):
        raise ValueError(example)
    return value


def project_folder(value: Path) -> Path:
    path = value.expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"no folder {path}; set it to the folder that holds dbt_project.yml")
    if not (path / "dbt_project.yml").is_file():
        raise ValueError(f"no dbt_project.yml in {path}; set it to your dbt project's folder")
    return path


def project_archive_url(value: str | None) -> str | None:
    """A storage URL whose name is the archive's sha256 (workspace/archive.py)."""
    if value is None:
        return None
    url = normalise_url(value)
    archive_digest(url)
    return url


def project_from_url(settings: Any) -> Any:
    """Settings whose project comes from DBT_RUNNER_PROJECT_URL run it where its archive
    is unpacked in the work folder (load_settings fetches it there)."""
    if settings.project_url is None:
        return settings
    if "project_dir" in settings.model_fields_set:
        raise ValueError(
            "DBT_RUNNER_PROJECT_URL and DBT_RUNNER_PROJECT_DIR are exclusive: the project is "
            "the archive's, or the folder's"
        )
    settings.project_dir = fetched_folder(settings.work_dir, settings.project_url)
    return settings


def profiles_folder(value: Path | None) -> Path | None:
    if value is None:
        return None
    path = value.expanduser().resolve()
    if not (path / "profiles.yml").is_file():
        raise ValueError("no profiles.yml in this folder; unset it to let the runner render one")
    return path


def storage_url(value: str | None) -> str | None:
    return None if value is None else normalise_url(value)


def public_url(value: str | None) -> str | None:
    if value is None:
        return None
    return http_url(value, "https://docs.example.com/dbt").rstrip("/")


def absolute(value: Path | None) -> Path | None:
    return None if value is None else value.expanduser().resolve()
