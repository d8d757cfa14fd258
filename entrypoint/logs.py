"""Logging: human text by default, JSON lines (for CloudWatch and friends) on request.

dbt's own log format follows the same switch (`DBT_LOG_FORMAT`), unless set already.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER = "entrypoint"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the run's identity on every line."""

    def __init__(self, context: dict[str, Any]) -> None:
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": "dbt-runner",
            "msg": record.getMessage(),
            **self.context,
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s  [dbt-runner] %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            text = text.replace("[dbt-runner] ", f"[dbt-runner] {record.levelname}: ", 1)
        return text


def json_requested() -> bool:
    """Whether JSON logs were asked for, read before the settings are validated."""
    return os.environ.get("DBT_RUNNER_LOG_FORMAT", "").strip().lower() == "json"


def setup(log_format: str, context: dict[str, Any] | None = None) -> None:
    """The runner's log: progress to stdout (interleaved with dbt's), errors to stderr."""
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonFormatter(context or {})
        os.environ.setdefault("DBT_LOG_FORMAT", "json")
    else:
        formatter = TextFormatter()
    progress = logging.StreamHandler(sys.stdout)
    progress.addFilter(lambda record: record.levelno < logging.ERROR)
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.ERROR)
    for handler in (progress, errors):
        handler.setFormatter(formatter)
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [progress, errors]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def error_line(message: str) -> str:
    """An error for stderr, before logging is set up: one line, in the asked format."""
    if json_requested():
        return json.dumps(
            {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "error",
                "logger": "dbt-runner",
                "msg": message,
            }
        )
    return f"dbt-runner: error: {message}"
