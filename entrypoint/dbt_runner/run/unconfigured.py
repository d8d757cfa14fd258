"""A run whose settings did not validate: nothing ran, and the channels are still told,
with a report of its own made and notified as every run's is (run/finish.py): its
error, its exit code (3), the project when it can be read."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dbt_runner.config import load_notify_settings, new_run_id
from dbt_runner.errors import ExitCode, RunnerError
from dbt_runner.report.model import RunReport
from dbt_runner.run.finish import notify_channels
from dbt_runner.versions import runner_version
from dbt_runner.workspace.project import read_project


def finish_unconfigured(message: str) -> None:
    """Tell the channels, if the notification settings themselves are valid. Quiet:
    stderr keeps its one line (the caller's)."""
    settings = load_notify_settings()
    if settings is None:
        return
    env = os.environ
    report = RunReport(
        runner_version=runner_version(),
        env=env.get("DBT_RUNNER_ENV", "")[:32] or "unknown",
        job=env.get("DBT_RUNNER_JOB", "")[:32] or "full",
        run_id=new_run_id(),
    )
    with contextlib.suppress(RunnerError, OSError):  # the project may be what is wrong
        report.project = read_project(Path(env.get("DBT_RUNNER_PROJECT_DIR", ".")))[0]
    report.add_error("settings", message, ExitCode.CONFIG)
    report.finish()
    notify_channels(settings, report, quiet=True)
