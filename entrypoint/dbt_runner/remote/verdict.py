"""Why a stopped task ended as it did: its essential container's exit code, or, when it
never ran or was killed by the platform, exit 4 with one line naming the cause and the
fix. A task without an exit code is never a success."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INFRA_EXIT = 4
# What a stop reason says, and what to do about it.
FIXES = {
    "CannotPullContainerError": (
        "the image could not be pulled: check that its tag exists and that the execution role "
        "may pull it; in private subnets, add VPC endpoints for ECR (api, dkr) and S3, or a "
        "NAT gateway"
    ),
    "ResourceInitializationError": (
        "the task could not fetch its secrets or set up its log: check the execution role; in "
        "private subnets, add VPC endpoints for Secrets Manager, SSM and CloudWatch Logs, or "
        "a NAT gateway"
    ),
    "CannotStartContainerError": (
        "the container did not start: check the image's entrypoint and the task's command"
    ),
    "OutOfMemoryError": (
        "the task ran out of memory: raise the task definition's memory, or lower "
        "DBT_RUNNER_THREADS"
    ),
    "SpotInterruption": "the platform took the task's capacity back: run it again (retry resumes)",
    "TerminationNotice": "the platform stopped the task's host: run it again (retry resumes)",
}


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    problem: str | None = None  # one line, when the job itself did not decide the code


def verdict(task: dict[str, Any], container_name: str) -> Verdict:
    """The caller's exit code for a STOPPED task; `container_name`: the job's container."""
    container = next(
        (c for c in task.get("containers", []) if c.get("name") == container_name), None
    )
    reason = str(task.get("stoppedReason") or "")
    stop_code = str(task.get("stopCode") or "")
    if container is None:
        return Verdict(INFRA_EXIT, f"the task has no container '{container_name}' ({reason})")
    said = " ".join(part for part in (str(container.get("reason") or ""), reason) if part)
    exit_code = container.get("exitCode")
    if "OutOfMemory" in said:
        return Verdict(INFRA_EXIT, _line(f"exit {exit_code}, {said}", "OutOfMemoryError"))
    if stop_code in ("SpotInterruption", "TerminationNotice"):
        return Verdict(INFRA_EXIT, _line(f"{stop_code}: {said}", stop_code))
    if exit_code is None:
        cause = next((name for name in FIXES if name in said), None)
        never = "the task never ran" if stop_code == "TaskFailedToStart" else "no exit code"
        return Verdict(INFRA_EXIT, _line(f"{never}: {said or 'no reason given'}", cause))
    return Verdict(int(exit_code))


def _line(what: str, cause: str | None) -> str:
    fix = FIXES.get(cause or "")
    return f"{what}; {fix}" if fix else what
