"""The README agrees with the code: generated settings tables, tables that render,
and every setting the code names in a message exists."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from dbt_runner.config import Settings, known_env_names
from docs.settings_doc import README, main, render, updated
from tests.support import ROOT


def test_settings_tables_are_generated_from_the_model() -> None:
    assert main(["--check"]) == 0, "run `make docs`"
    groups = {
        f"DBT_RUNNER_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if hasattr(field.annotation, "model_fields")
    }
    shown = set(re.findall(r"^\| `(DBT_RUNNER_[A-Z0-9_]+)`", render(), re.MULTILINE))
    assert shown == known_env_names() - groups  # every setting has its row, and only those
    # And the check can fail: a stale README is caught.
    stale = README.read_text().replace("| `DBT_RUNNER_ENV` |", "| `DBT_RUNNER_ENVIRONMENT` |")
    assert updated(stale) != stale


def table_lines(markdown: str) -> set[int]:
    """The source lines that markdown-it renders inside a table."""
    parser = MarkdownIt("commonmark").enable("table")
    lines: set[int] = set()
    for token in parser.parse(markdown):
        if token.type == "table_open" and token.map:
            lines.update(range(*token.map))
    return lines


def test_every_readme_table_renders_as_a_table() -> None:
    text = README.read_text()
    in_tables = table_lines(text)
    in_code = False
    for number, line in enumerate(text.splitlines()):
        in_code = in_code != line.startswith("```")
        if line.startswith("|") and not in_code:
            assert number in in_tables, f"README.md line {number + 1} is not in a table: {line}"
    # The check can fail: a blank line inside a table leaves its rest as text.
    broken = "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n"
    assert 4 not in table_lines(broken)


def test_settings_named_in_messages_exist() -> None:
    """A message that tells a user to set DBT_RUNNER_SOMETHING must name a real one."""
    known = known_env_names()
    mentioned: set[str] = set()
    for path in (ROOT / "entrypoint").rglob("*.py"):
        mentioned |= set(re.findall(r"DBT_RUNNER_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert mentioned, "the scan found nothing: the check would pass vacuously"
    assert sorted(mentioned - known) == []


def newest_changelog_version(text: str) -> str | None:
    found = re.search(r"^## +(\d+\.\d+\.\d+\S*)", text, re.MULTILINE)
    return found.group(1) if found else None


def test_version_moves_with_the_newest_changelog_entry() -> None:
    """VERSION names the code: the image built from main says what CHANGELOG says."""
    version = (ROOT / "VERSION").read_text().strip()
    assert newest_changelog_version((ROOT / "CHANGELOG.md").read_text()) == version
    # The check can fail: a changelog whose newest entry is another version.
    assert newest_changelog_version("# Changelog\n\n## 9.9.9 — unreleased\n\n## 0.1.0\n") != version
