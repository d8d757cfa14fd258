"""Exit codes and the two errors a person can act on before or around dbt."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README, "Exit codes")."""

    SUCCESS = 0
    DBT_FAILURES = 1  # dbt ran and reported failed nodes
    DBT_ERROR = 2  # dbt could not run (parse error, connection, unhandled error)
    CONFIG = 3  # configuration invalid: nothing ran
    INFRA = 4  # credentials or storage failed
    SIGINT = 130
    SIGTERM = 143


class RunnerError(Exception):
    """An error with a one-line, actionable message and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.DBT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(RunnerError):
    """The configuration is invalid; raised before anything runs."""

    exit_code = ExitCode.CONFIG


class InfraError(RunnerError):
    """Credentials or storage failed (AWS APIs, S3, the local file system)."""

    exit_code = ExitCode.INFRA
