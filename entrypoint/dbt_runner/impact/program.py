"""The comparison as dbt runs it: compare.jinja with its work set above it, and the
findings it logs read back from dbt's events."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from dbt_runner.impact.plan import Comparison

# What the template's log lines start with; the rest of the line is JSON.
PREFIX = "dbt-runner-impact "
LOG_EVENTS = {"JinjaLogDebug", "JinjaLogInfo"}
QUERY_EVENTS = {"SQLQuery"}  # one per statement the adapter sends


@cache
def _template() -> str:
    return (files("dbt_runner.impact") / "compare.jinja").read_text()


def program(comparisons: list[Comparison], examples: int) -> str:
    """The Jinja dbt compiles: the comparisons as a JSON literal, then the template."""
    work = {
        "examples": examples,
        "models": [
            {
                "id": c.unique_id,
                "pr": c.pr.as_dict(),
                "production": c.production.as_dict() if c.production else None,
                "key": c.key,
            }
            for c in comparisons
        ],
    }
    return "{%- set work = fromjson(" + jinja_string(json.dumps(work)) + ") -%}\n" + _template()


def jinja_string(text: str) -> str:
    """A Jinja string literal holding `text` exactly (Jinja unescapes as Python does)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + escaped.encode("ascii", "backslashreplace").decode("ascii") + "'"


def said(event: Any) -> tuple[str, dict[str, Any]] | None:
    """What the template logged in this event, as (kind, data); None for dbt's own."""
    if event.info.name not in LOG_EVENTS:
        return None
    message = str(event.data.msg)
    if not message.startswith(PREFIX):
        return None
    found = json.loads(message[len(PREFIX) :])
    return found["kind"], found["data"]


def is_query(event: Any) -> bool:
    return event.info.name in QUERY_EVENTS
