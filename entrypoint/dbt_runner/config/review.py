"""What a pull request's reviewer gets: the impact of its run on the data
(DBT_RUNNER_PR_IMPACT__*) and the comment on the pull request (DBT_RUNNER_GITHUB__*)."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from dbt_runner.config.values import http_url, setting

FALSE_WORDS = {"0", "false", "no", "off"}


class ImpactSettings(BaseModel):
    """A pull-request run's models compared with production's after its build
    (`DBT_RUNNER_PR_IMPACT=false` turns it off)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = setting(
        True,
        "compare each model a pull-request run built with production's relation of the "
        "same node: columns, rows, rows by key (see docs/pull-requests.md)",
    )
    max_models: int = setting(
        50,
        "models compared at most (changed ones first); the rest are listed as not compared",
        ge=1,
        le=10000,
    )
    timeout_s: float = setting(
        120,
        "each model's comparison may take this long; its queries are then cancelled and "
        "it is listed as not compared",
        gt=0,
    )
    examples: int = setting(5, "example keys shown per kind of difference", ge=0, le=100)
    max_row_loss_pct: float | None = setting(
        None,
        "a gate: fail the run (exit 1) when a model loses more than this percentage of its "
        "production rows; unset, the impact never changes the exit code",
        ge=0,
        le=100,
    )


def impact_switch(value: Any) -> Any:
    """`DBT_RUNNER_PR_IMPACT=false` (or true) for the whole group."""
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, str):
        return {"enabled": value.strip().lower() not in FALSE_WORDS}
    return value


class GitHubSettings(BaseModel):
    """The pull request's comment: one per project and env, updated in place on each run.
    Each falls back to the variable GitHub Actions sets."""

    model_config = ConfigDict(extra="forbid")

    comment: bool = setting(
        True, "comment the impact on the pull request (DBT_RUNNER_PR a number, a token set)"
    )
    token: SecretStr | None = setting(
        None, "a token that may write pull-request comments", shown="`GITHUB_TOKEN`"
    )
    repository: str | None = setting(
        None, "`owner/name` of the pull request's repository", shown="`GITHUB_REPOSITORY`"
    )
    api_url: str = setting(
        "https://api.github.com",
        "the REST API (GitHub Enterprise: `https://HOST/api/v3`)",
        shown="`GITHUB_API_URL`, else `https://api.github.com`",
    )

    @model_validator(mode="before")
    @classmethod
    def _actions(cls, data: Any) -> Any:
        """What GitHub Actions sets, where the runner's own variable is not."""
        data = dict(data or {})
        for name in ("token", "repository", "api_url"):
            found = os.environ.get(f"GITHUB_{name.upper()}")
            if data.get(name) is None and found:
                data[name] = found
        return data

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return http_url(value).rstrip("/")
