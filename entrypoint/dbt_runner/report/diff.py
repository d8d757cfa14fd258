"""A failed unit test's expected-against-actual table, as dbt prints it (daff's diff: a
header row starting `@@`, then one row per line, its first cell the row's change: `→`
changed, `+++` only in actual, `---` only in expected, empty for context), read back
into rows for the summary's and the run page's tables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiffTable:
    intro: str  # dbt's words before the table ("actual differs from expected:")
    header: list[str]  # the columns (the change column first, empty)
    rows: list[list[str]]


def diff_table(detail: str | None) -> DiffTable | None:
    """The table in a node's multi-line message, or None when it holds none."""
    if not detail:
        return None
    lines = detail.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("@@")), None)
    if start is None:
        return None
    header = _cells(lines[start])
    rows = [_cells(line) for line in lines[start + 1 :] if line.strip()]
    if not rows or any(len(row) != len(header) for row in rows):
        return None
    intro = " ".join(line.strip() for line in lines[:start] if line.strip())
    return DiffTable(intro=intro, header=["", *header[1:]], rows=rows)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split(",")]
