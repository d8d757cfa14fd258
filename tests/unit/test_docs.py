"""The documentation agrees with the code: generated settings tables, tables that
render, links that resolve, and every setting the code names in a message exists."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from dbt_runner.config import Settings, known_env_names
from docs.settings_doc import PAGE, main, render, updated
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
    stale = PAGE.read_text().replace("| `DBT_RUNNER_ENV` |", "| `DBT_RUNNER_ENVIRONMENT` |")
    assert updated(stale) != stale


def table_lines(markdown: str) -> set[int]:
    """The source lines that markdown-it renders inside a table."""
    parser = MarkdownIt("commonmark").enable("table")
    lines: set[int] = set()
    for token in parser.parse(markdown):
        if token.type == "table_open" and token.map:
            lines.update(range(*token.map))
    return lines


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_table_renders_as_a_table() -> None:
    assert len(PAGES) >= 10  # the README and the docs pages
    for page in PAGES:
        text = page.read_text()
        in_tables = table_lines(text)
        in_code = False
        for number, line in enumerate(text.splitlines()):
            in_code = in_code != line.startswith("```")
            if line.startswith("|") and not in_code:
                assert number in in_tables, (
                    f"{page.name} line {number + 1} is not in a table: {line}"
                )
    # The check can fail: a blank line inside a table leaves its rest as text.
    broken = "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n"
    assert 4 not in table_lines(broken)


def broken_links(page: Path) -> list[str]:
    """Relative links in a Markdown page that lead nowhere."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    return [link for link in local if not (page.parent / link).exists()]


def test_every_link_between_the_pages_resolves(tmp_path: Path) -> None:
    for page in PAGES:
        assert broken_links(page) == [], page.name
    # The check can fail: a page that links to one that is not there.
    lost = tmp_path / "lost.md"
    lost.write_text("see [the jobs](jobs.md) and [the web](https://example.com)")
    assert broken_links(lost) == ["jobs.md"]


def test_the_readme_is_the_front_door() -> None:
    """Short: what it is, the quick start, the common settings, the links."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert "make test" in readme and "make run" in readme
    linked = set(re.findall(r"\(docs/([a-z-]+\.md)\)", readme))
    assert linked == {page.name for page in PAGES[1:]}  # every page, from the front door


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
