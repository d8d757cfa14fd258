"""Logging: human text by default, JSON lines (for CloudWatch and friends) on request.

dbt's own log format follows the same switch (`DBT_LOG_FORMAT`), unless set already,
and so does every library's logger (urllib3's retry warnings, botocore, Python's
warnings): in JSON mode every line the process writes is one JSON object.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

LOGGER = "dbt_runner"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the run's identity on every line."""

    def __init__(self, context: dict[str, Any]) -> None:
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": "dbt-runner" if record.name.startswith(LOGGER) else record.name,
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
    """The runner's log: progress to stdout (interleaved with dbt's), errors to stderr.
    Libraries log through the same handlers (warnings and up), so nothing reaches the
    console in another format."""
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
    root = logging.getLogger()
    root.handlers[:] = [progress, errors]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # Python warnings become log records too
    # A handler that cannot write (a full disk under dbt's log) must not print a
    # traceback of its own: the failure is reported where it matters.
    logging.raiseExceptions = False
    threading.excepthook = _log_thread_exception
    # dbt's console (its logger keeps its filters when dbt replaces its handlers).
    logging.getLogger(DBT_CONSOLE).addFilter(without_interrupt_traces)


# The logger dbt writes its console lines through (dbt_common's stdout logger).
DBT_CONSOLE = "stdout_log"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def without_interrupt_traces(record: logging.LogRecord) -> bool:
    """Whether a dbt console line is shown: not the traceback (and the empty 'Encountered
    an error:') dbt prints when a stop interrupts it; the run says why in one line, and
    dbt's log file keeps the trace."""
    line = _ANSI.sub("", record.getMessage())
    if line.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            line = str(json.loads(line).get("info", {}).get("msg", line))
    if "Traceback (most recent call last)" in line and "KeyboardInterrupt" in line:
        return False
    return not re.search(r"Encountered an error:\s*$", line)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """An exception escaping a thread (a library's) is logged, never printed raw."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread else "a thread"
    logging.getLogger(LOGGER).error(
        "unexpected error in %s: %s: %s", thread, args.exc_type.__name__, args.exc_value
    )


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
