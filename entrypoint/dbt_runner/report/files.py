"""Report files: the RunReport rendered for the places people look, one renderer per
format (markdown.py, junit.py, sarif.py, html.py, github.py), written here.

`report.json` (the model itself), `summary.md` (also appended to
`$GITHUB_STEP_SUMMARY`), `junit.xml` (a suite per phase, a case per executed node or
linted file, a failing case for a phase or stage that failed without nodes) and, when
the run linted, `lint.sarif` (SARIF 2.1.0, for GitHub code scanning).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from importlib import metadata
from pathlib import Path

from dbt_runner.report.html import render
from dbt_runner.report.junit import to_junit
from dbt_runner.report.markdown import to_markdown
from dbt_runner.report.model import RunReport
from dbt_runner.report.sarif import to_sarif


def write_report_files(
    report: RunReport, folder: Path, only: Collection[str] | None = None
) -> list[Path]:
    """Write report.json, report.html, summary.md, junit.xml (and lint.sarif) into
    `folder`; `only`: just these of them (the final write rewrites what notifying
    changed, and nothing else: at 20,000 nodes each file costs a fraction of a second)."""
    folder.mkdir(parents=True, exist_ok=True)
    renderers: dict[str, Callable[[], bytes]] = {
        "report.json": lambda: report.model_dump_json(indent=2).encode(),
        "report.html": lambda: render(report).encode(),
        "summary.md": lambda: to_markdown(report).encode(),
        "junit.xml": lambda: to_junit(report),
    }
    if report.lint is not None:
        lint = report.lint
        renderers["lint.sarif"] = lambda: json.dumps(
            to_sarif(lint, _sqlfluff_version()), indent=2
        ).encode()
    paths = []
    for name, rendered in renderers.items():
        if only is not None and name not in only:
            continue
        path = folder / name
        path.write_bytes(rendered())
        paths.append(path)
    return paths


def _sqlfluff_version() -> str:
    try:
        return metadata.version("sqlfluff")
    except metadata.PackageNotFoundError:
        return "unknown"
