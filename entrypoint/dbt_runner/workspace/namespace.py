"""A pull request's namespace: the schemas its runs write to, set in the profile.

Every relation of a pull request's run lives in that pull request's schemas; the guard
(jobs/pull_request.py) proves it before any node runs, and `cleanup` (jobs/cleanup.py)
drops them when the pull request closes.

The namespace of pull request 123 is the target schema made by DBT_RUNNER_PR_SCHEMA
(`{schema}_pr_{pr}`: `analytics_pr_123`) and every schema under it
(`analytics_pr_123_marts`, which dbt's default generate_schema_name makes of a custom
schema `marts`). The target schema is set in the profile (rendered, or a rewritten copy
of an existing one), so the project needs no macro of its own.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dbt_runner.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Namespace:
    """Where a pull request's relations live."""

    pr: str
    root: str  # the target schema of the pull request

    def holds(self, schema: str | None) -> bool:
        name, root = (schema or "").lower(), self.root.lower()
        return name == root or name.startswith(root + "_")


def pr_schema(pattern: str, schema: str, pr: str) -> str:
    """The pull request's target schema from the target's own (`{schema}_pr_{pr}`)."""
    return pattern.replace("{schema}", schema).replace("{pr}", pr)


def rendered_value(value: str) -> str:
    """A profile value as dbt renders it (`{{ env_var('SCHEMA') }}_pr_7`)."""
    if "{{" not in value:
        return value
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))  # env_var() reads the invocation's environment
    return str(ProfileRenderer({}).render_value(value))


def pull_request_profile(
    data: Any, where: Path, profile: str, target: str | None, pattern: str, pr: str
) -> tuple[dict[str, Any], str, str]:
    """A copy of an existing profiles.yml's content (`data`, read from `where`) whose
    target writes to the pull request's schema. Returns it, the target's name and the
    namespace root.
    `profile` and `target`: the one to rewrite (None: its default); `pattern`:
    DBT_RUNNER_PR_SCHEMA; `pr`: the pull request."""
    try:
        chosen = target or data[profile]["target"]
        output: dict[str, Any] = dict(data[profile]["outputs"][chosen])
    except (KeyError, TypeError):
        raise ConfigError(
            f"{where}: no target '{target or '(default)'}' in profile "
            f"'{profile}' to put pull request {pr}'s schemas under"
        ) from None
    key = "dataset" if "dataset" in output else "schema"
    default = "main" if output.get("type") == "duckdb" else "public"
    output[key] = pr_schema(pattern, str(output.get(key) or default), pr)
    outputs = {**data[profile]["outputs"], chosen: output}
    document = {**data, profile: {**data[profile], "outputs": outputs}}
    return document, chosen, rendered_value(output[key])


def rewrite_profile(
    source: Path, destination: Path, profile: str, target: str | None, pattern: str, pr: str
) -> tuple[str, str]:
    """`pull_request_profile` of `source`/profiles.yml, written to `destination`.
    `profile`, `target`, `pattern` and `pr`: as `pull_request_profile`'s."""
    data = yaml.safe_load((source / "profiles.yml").read_text())
    document, chosen, root = pull_request_profile(
        data, source / "profiles.yml", profile, target, pattern, pr
    )
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "profiles.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    return chosen, root


def valid_root(root: str, pr: str) -> str:
    """Refuse a namespace root that does not name the pull request: a pattern that
    would make cleanup drop a shared schema."""
    if not re.search(rf"(^|[^a-z0-9]){re.escape(pr)}($|[^a-z0-9])", root.lower()):
        raise ConfigError(
            f"pull request {pr}'s schema '{root}' does not name it; check "
            "DBT_RUNNER_PR_SCHEMA (e.g. '{schema}_pr_{pr}')"
        )
    return root
