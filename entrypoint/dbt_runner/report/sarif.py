"""lint.sarif: the lint phase's findings in SARIF 2.1.0, for GitHub code scanning."""

from __future__ import annotations

from typing import Any

from dbt_runner.report.model import LintInfo

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_sarif(lint: LintInfo, tool_version: str) -> dict[str, Any]:
    """SARIF 2.1.0, for GitHub code scanning: a result per finding, a rule per code."""
    codes = sorted({finding.rule for finding in lint.findings})
    names = {finding.rule: finding.name for finding in lint.findings}
    rules = [
        {"id": code, "name": names[code], "shortDescription": {"text": names[code]}}
        for code in codes
    ]
    results = [
        {
            "ruleId": finding.rule,
            "ruleIndex": codes.index(finding.rule),
            "level": "warning",
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"{lint.prefix}{finding.file}"},
                        "region": {"startLine": finding.line, "startColumn": finding.column},
                    }
                }
            ],
        }
        for finding in lint.findings
    ]
    driver = {
        "name": "SQLFluff",
        "version": tool_version,
        "informationUri": "https://docs.sqlfluff.com",
        "rules": rules,
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
