"""Report files: the RunReport rendered for the places people look, one renderer per
format (markdown.py, junit.py, sarif.py, html.py, github.py), written here.

`report.json` (the model itself), `summary.md` (also appended to
`$GITHUB_STEP_SUMMARY`), `junit.xml` (a suite per phase, a case per executed node or
linted file, a failing case for a phase or stage that failed without nodes) and, when
the run linted, `lint.sarif` (SARIF 2.1.0, for GitHub code scanning).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from dbt_runner.report.html import render
from dbt_runner.report.junit import to_junit
from dbt_runner.report.markdown import to_markdown
from dbt_runner.report.model import RunReport
from dbt_runner.report.sarif import to_sarif

REPORT_FILES = ("report.json", "report.html", "summary.md", "junit.xml", "lint.sarif")


def write_report_files(report: RunReport, folder: Path) -> list[Path]:
    """Write report.json, report.html, summary.md, junit.xml (and lint.sarif) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "report.json": report.model_dump_json(indent=2).encode(),
        "report.html": render(report).encode(),
        "summary.md": to_markdown(report).encode(),
        "junit.xml": to_junit(report),
    }
    if report.lint is not None:
        sarif = to_sarif(report.lint, _sqlfluff_version())
        contents["lint.sarif"] = json.dumps(sarif, indent=2).encode()
    paths = []
    for name, data in contents.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def _sqlfluff_version() -> str:
    try:
        return metadata.version("sqlfluff")
    except metadata.PackageNotFoundError:
        return "unknown"
