"""Setting values: how each kind of value is declared, read and checked, shared by
every group of settings."""

from __future__ import annotations

import difflib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, SecretStr
from pydantic_settings import NoDecode

from dbt_runner.config.kinds import PHASE_ORDER, Phase

ENV_PREFIX = "DBT_RUNNER_"
NESTED_DELIMITER = "__"


def setting(
    default: Any = ...,
    description: str = "",
    *,
    flag: str | None = None,
    short: str | None = None,
    shown: str | None = None,
    **options: Any,
) -> Any:
    """A documented field: `flag` (and `short`) make it a CLI flag too; `shown` is the
    default as docs/settings.md states it, for defaults computed at run time.
    `default` (or `default_factory`): its value when unset; `description`: what it is, for
    the docs and --help."""
    extra: dict[str, Any] = {"flag": flag, "short": short, "shown": shown}
    if "default_factory" not in options:
        options["default"] = default
    return Field(description=description, json_schema_extra=extra, **options)


def split_list(value: Any) -> Any:
    """Comma- or space-separated text from the environment becomes a list."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value.strip()) if part]
    return value


def phase_list(value: Any) -> list[Phase]:
    items = split_list(value)
    if not isinstance(items, list):
        raise ValueError("expected a comma-separated list of phases")
    phases: list[Phase] = []
    for item in items:
        name = str(item).strip().lower()
        try:
            phase = Phase(name)
        except ValueError:
            close = difflib.get_close_matches(name, [p.value for p in Phase], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"'{item}' is not a phase{hint}; accepted: {', '.join(p.value for p in Phase)}"
            ) from None
        if phase in phases:
            raise ValueError(f"'{name}' is listed twice")
        phases.append(phase)
    # Phases always run in the data path's order, whatever order they were listed in.
    return sorted(phases, key=PHASE_ORDER.index)


PhaseList = Annotated[list[Phase], NoDecode]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def http_url(value: str, example: str = "https://hooks.example.com/...") -> str:
    """The one http(s) URL check every URL setting shares."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https:// (e.g. {example})")
    return value


def secret_http_url(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        http_url(value.get_secret_value())
    return value


def json_object(value: Any, example: str) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not valid JSON ({exc.msg}); expected an object like {example}"
            ) from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object like {example}")
    return value


_INTERVAL = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def interval(text: str) -> timedelta:
    """`4h`, `30m`, `1d` as a timedelta; ValueError otherwise."""
    match = _INTERVAL.match(text.strip().lower())
    if not match:
        raise ValueError(f"'{text}' is not an interval like 30m, 4h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
