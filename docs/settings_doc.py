"""docs/settings.md's tables, generated from the settings model (`make docs`).

Each setting's description lives on its field (entrypoint/dbt_runner/config/); this
renders one Markdown table per group between the page's `settings:start` /
`settings:end` markers, so the documentation can never disagree with the code.
`--check` fails when the page is stale (CI runs it through the tests).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dbt_runner.config import ENV_PREFIX, NESTED_DELIMITER, Settings

PAGE = Path(__file__).resolve().parent / "settings.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
GROUPS = {
    "": "General",
    "warehouse": "Warehouse (a rendered profile)",
    "slim": "Slim jobs",
    "fresh": "Fresh jobs",
    "pr_impact": "Pull requests: impact on the data",
    "github": "Pull requests: the GitHub comment",
    "credentials": "Credentials",
    "notify": "Notifications",
    "lineage": "Lineage (OpenLineage)",
    "history": "Run history",
    "aws": "AWS",
    "remote": "Remote: the job as an ECS task (`dbt-runner remote`, the caller's)",
}


def _default(field: Any) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if extra.get("shown"):
        return str(extra["shown"])
    value = field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            continue  # its own table
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flags = [f"`{flag}`" for flag in (extra.get("flag"), extra.get("short")) if flag]
        variable = f"`{prefix}{(field.alias or name).upper()}`"
        described = _cell(field.description or "")
        rows.append(
            f"| {variable} | {', '.join(flags) or '—'} | {_cell(_default(field))} | {described} |"
        )
    return rows


def render() -> str:
    """Every settings table, one per group, as docs/settings.md shows them."""
    lines: list[str] = []
    for group, title in GROUPS.items():
        model: Any = Settings.model_fields[group].annotation if group else Settings
        prefix = f"{ENV_PREFIX}{group.upper()}{NESTED_DELIMITER}" if group else ENV_PREFIX
        lines += [f"**{title}**", ""]
        lines += ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
        lines += [*_rows(model, prefix), ""]
    return "\n".join(lines)


def updated(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{render()}{END}{tail}"


def main(argv: list[str]) -> int:
    text = PAGE.read_text()
    new = updated(text)
    if "--check" in argv:
        if new != text:
            print("docs/settings.md's tables are stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
