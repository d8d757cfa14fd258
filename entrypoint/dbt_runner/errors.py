"""Exit codes, and the errors a person can act on before, around or after dbt."""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (docs/faults.md, "Exit codes")."""

    SUCCESS = 0
    DBT_FAILURES = 1  # dbt ran and reported failed nodes
    DBT_ERROR = 2  # dbt could not run (parse error, connection), or an unexpected error
    CONFIG = 3  # configuration invalid: nothing ran
    INFRA = 4  # credentials, storage or the machine (a full disk) failed
    TIMEOUT = 124  # DBT_RUNNER_TIMEOUT_S passed (as timeout(1))
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
    """Credentials, storage or the machine failed (AWS APIs, S3, the file system)."""

    exit_code = ExitCode.INFRA


def disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or anything it was raised from, is 'no space left on device'."""
    seen: BaseException | None = exc
    for _ in range(10):  # bounded: exception chains can loop
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _no_space(stage: str, text: str) -> InfraError:
    return InfraError(
        f"no space left on device during {stage} ({text}): give the job more disk "
        "(ECS ephemeral storage, a larger emptyDir) or point DBT_RUNNER_WORK_DIR elsewhere"
    )


def as_runner_error(exc: Exception, stage: str) -> RunnerError:
    """Any exception as a RunnerError: its own, a full disk (infrastructure), or an
    unexpected error (exit 2), named by the stage it happened in."""
    if isinstance(exc, RunnerError):
        return exc
    text = " ".join(str(exc).split())[:500] or type(exc).__name__
    if disk_full(exc):
        return _no_space(stage, text)
    return RunnerError(
        f"unexpected error during {stage}: {type(exc).__name__}: {text} "
        "(a bug in dbt-runner or dbt: please report it with this run's log)"
    )


def dbt_error(phase: str, message: str) -> RunnerError:
    """A dbt phase that could not run, in dbt's words; a full disk is infrastructure."""
    if "No space left on device" in message:
        return _no_space(phase, message)
    return RunnerError(message)


def yaml_problem(path: object, exc: Exception) -> str:
    """A YAML file that does not parse, as `file:line:column: problem` (1-based)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}: not valid YAML ({problem})"
