"""The verbs that run a job: `run`, `retry` (a job kind of its own) and `lint` (the
lint phase alone, with its preset)."""

from __future__ import annotations

import argparse

from dbt_runner.cli.args import run_settings


def run_verb(args: argparse.Namespace) -> int:
    from dbt_runner.run.pipeline import run

    return run(run_settings(args))


def retry_verb(args: argparse.Namespace) -> int:
    from dbt_runner.jobs.retry import Retry
    from dbt_runner.run.pipeline import run

    settings = run_settings(args)
    return run(settings, Retry(settings, args.retry_of))


def lint_verb(args: argparse.Namespace) -> int:
    """For a developer's machine: findings fail it (exit 1)."""
    from dbt_runner.jobs.lint import LINT_PRESET
    from dbt_runner.run.pipeline import run

    return run(run_settings(args, **LINT_PRESET))


def cleanup_verb(args: argparse.Namespace) -> int:
    from dbt_runner.jobs.cleanup import cleanup

    return cleanup(run_settings(args))
