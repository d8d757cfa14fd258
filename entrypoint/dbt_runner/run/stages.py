"""Stages: which part of the data path is running, how long each took, and what broke.

Every stage of a run executes inside `Stages.stage(name)`. Whatever it raises (a
RunnerError with its own message and exit code, a full disk, or any unexpected
exception) becomes one RunError in the report and one line in the log, then
`StageFailed`, so the run goes on to publish, report and notify like any other failure.
Interrupts (KeyboardInterrupt) pass through untouched: the run's guard handles them.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from dbt_runner.errors import ExitCode, RunnerError, as_runner_error
from dbt_runner.report.model import RunReport

log = logging.getLogger(__name__)


class StageFailed(Exception):
    """A stage failed; its error is in the report already."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class Stages:
    """Records the current stage, its duration and its failure into a RunReport: the one
    writer of its timings, errors and warnings."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.current = "settings"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run a stage; a failure is recorded, then raised as StageFailed."""
        self.current = name
        try:
            with self.timed(name):
                yield
        except StageFailed:
            raise
        except Exception as exc:
            self.fail(name, exc)
            raise StageFailed(name) from exc

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the time spent inside to the report's timing of `name`."""
        started = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - started
            self.report.timings[name] = round(self.report.timings.get(name, 0.0) + spent, 3)

    def fail(self, name: str, exc: Exception) -> None:
        """Record `exc` as the failure of stage `name`: one line, one RunError."""
        error = as_runner_error(exc, name)
        detail = None
        if not isinstance(exc, RunnerError):
            # Unexpected: the traceback goes into the report, not onto the console.
            detail = "".join(traceback.format_exception(exc))[-8000:]
        self.error(name, error.message, ExitCode(error.exit_code), detail)

    def error(
        self, stage: str, message: str, exit_code: ExitCode, detail: str | None = None
    ) -> None:
        """An error of the run: one line on stderr, one RunError in the report (the one
        writer of both).
        `stage`: where; `message`: one line; `exit_code`: what it makes of the run's;
        `detail`: a traceback, for a bug report."""
        log.error("%s", message)
        self.report.add_error(stage, message, exit_code, detail)

    def warn(self, message: str) -> None:
        """A warning of the run: one line in the log, one in the report's warnings (the
        one writer of both); said once."""
        if message in self.report.warnings:
            return
        log.warning("%s", message)
        self.report.warnings.append(message)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A finishing step: like `stage`, but a failure is recorded and the run goes
        on to the next step."""
        try:
            with self.stage(name):
                yield
        except StageFailed:
            pass

    @contextmanager
    def advisory(self, name: str) -> Iterator[None]:
        """A finishing step whose failure costs a warning, never the exit code (history,
        lineage): timed like the others."""
        try:
            with self.timed(name):
                yield
        except Exception as exc:
            self.warn(f"{name} failed: {as_runner_error(exc, name).message}")
