"""Loading the settings: the environment and the flags, unknown variables refused, and
every validation problem turned into one line that names the setting and the fix."""

from __future__ import annotations

import difflib
import os
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dbt_runner.config.groups import NotifySettings
from dbt_runner.config.model import Settings
from dbt_runner.config.values import ENV_PREFIX, NESTED_DELIMITER
from dbt_runner.errors import ConfigError


class NotifyOnly(BaseSettings):
    """Just the notification settings, for telling the channels that the rest of the
    settings did not validate."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="ignore"
    )
    notify: NotifySettings = Field(default_factory=NotifySettings)


# --- turning validation problems into one line ------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def known_env_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every DBT_RUNNER_* variable name the model accepts (nested with __)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        key = (field.alias or name).upper()
        names.add(prefix + key)
        nested = _nested_model(field.annotation)
        if nested is not None:
            names |= known_env_names(nested, prefix + key + NESTED_DELIMITER)
    return names


def _dict_fields(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Names of dict-valued settings, whose keys may continue after `__`."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name).upper()
        nested = _nested_model(field.annotation)
        if nested is not None:
            found |= _dict_fields(nested, key + NESTED_DELIMITER)
        elif "dict" in str(field.annotation):
            found.add(key + NESTED_DELIMITER)
    return found


def unknown_env_names(environ: dict[str, str] | None = None) -> list[str]:
    """DBT_RUNNER_* variables that match no setting: almost always a typo."""
    environ = dict(os.environ) if environ is None else environ
    known = known_env_names()
    open_prefixes = tuple(_dict_fields())
    return sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(open_prefixes)
    )


SECRET_FIELDS = {"password", "slack_webhook_url", "webhook_url", "webhook_secret", "url"}


def describe_error(error: ValidationError, cli_flags: dict[str, str]) -> str:
    """The first validation problem as one line naming the variable or flag, and the
    names of any others, so one run shows everything to fix."""
    problems = error.errors()
    line = _describe(problems[0], cli_flags)
    others = [_setting_name(problem["loc"], cli_flags) for problem in problems[1:]]
    others = [name for name in dict.fromkeys(others) if name and name not in line]
    if others:
        line += f" (also invalid: {', '.join(others)})"
    return line


def _setting_name(loc: tuple[int | str, ...], cli_flags: dict[str, str]) -> str:
    parts = [str(part) for part in loc]
    if not parts:
        return ""
    flag = cli_flags.get(parts[0]) if len(parts) == 1 else None
    return flag or ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in parts)


def _describe(first: Any, cli_flags: dict[str, str]) -> str:
    loc = [str(part) for part in first["loc"]]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not loc:
        # A model-level rule: its message already names the variables.
        return message
    name = _setting_name(first["loc"], cli_flags)
    raw = first.get("input")
    if loc[-1] in SECRET_FIELDS or isinstance(raw, (dict, BaseModel)):
        shown = ""
    elif isinstance(raw, list):
        shown = "=" + repr(",".join(map(str, raw)))
    else:
        shown = "=" + repr(str(raw)) if raw is not None else ""
    if first["type"] == "extra_forbidden":
        return f"{name} is not a known setting; remove it or check its spelling"
    return f"{name}{shown}: {message[0].lower()}{message[1:]}"


def load_settings(
    overrides: dict[str, Any] | None = None, cli_flags: dict[str, str] | None = None
) -> Settings:
    """Build Settings from the environment and CLI overrides, or raise ConfigError; a
    project that travels as an archive (DBT_RUNNER_PROJECT_URL) is fetched here, so
    every verb finds it in its folder."""
    overrides = overrides or {}
    unknown = unknown_env_names()
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name.upper(), sorted(known_env_names()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{name} is not a known setting{hint}; remove it or fix its name")
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, cli_flags or {})) from None
    if settings.project_url:
        from dbt_runner.storage.archive import fetch_project

        fetch_project(settings.project_url, settings.project_dir, settings.aws)
    return settings


def load_notify_settings() -> NotifySettings | None:
    """The notification settings alone, None when they do not validate either."""
    try:
        return NotifyOnly().notify
    except ValidationError:
        return None
