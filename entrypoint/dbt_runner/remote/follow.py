"""Following a task until it stops, on the caller's own deadline: DescribeTasks every
poll, its log streamed meanwhile, and after it stopped the log read until it has been
quiet for a while (CloudWatch delivers the last lines after the task's exit). A SIGINT
or SIGTERM (a cancelled workflow), or the deadline, stops the task and waits for it,
within a bound."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbt_runner.config.remote import RemoteSettings
from dbt_runner.remote.tail import LogTail
from dbt_runner.remote.task import describe, stop_task

log = logging.getLogger(__name__)

DRAIN_MAX_S = 60.0  # the log's last lines never take longer than this


@dataclass
class Interrupt:
    """A stop the caller was asked for: the event its waits wake on, and the signal."""

    event: threading.Event
    signum: int | None = None


@contextmanager
def interrupts() -> Iterator[Interrupt]:
    """SIGINT and SIGTERM set the interrupt instead of ending the caller."""
    interrupt = Interrupt(threading.Event())

    def handle(signum: int, _frame: Any) -> None:
        interrupt.signum = signum
        interrupt.event.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupt
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class Followed:
    task: dict[str, Any]  # the last description
    stopped_by: int | None = None  # the caller's signal
    timed_out: bool = False


def follow(
    ecs: Any, task_arn: str, tail: LogTail | None, settings: RemoteSettings, interrupt: Interrupt
) -> Followed:
    """Poll the task (`task_arn`, through boto3's `ecs`) until STOPPED, or stop it (the
    `interrupt`, or the deadline in `settings`); then drain its log (`tail`, if any)."""
    cluster = str(settings.cluster)
    deadline = time.monotonic() + settings.deadline_s
    while True:
        task = describe(ecs, cluster, task_arn)
        if tail is not None:
            tail.read()
        if task.get("lastStatus") == "STOPPED":
            followed = Followed(task)
            break
        if interrupt.event.is_set() or time.monotonic() > deadline:
            followed = _stop(ecs, task_arn, tail, settings, interrupt)
            break
        interrupt.event.wait(settings.poll_s)
    if tail is not None:
        _drain(tail, settings.drain_s)
    return followed


def _stop(
    ecs: Any, task_arn: str, tail: LogTail | None, settings: RemoteSettings, interrupt: Interrupt
) -> Followed:
    """Stop the task and wait for it to stop, within DBT_RUNNER_REMOTE__STOP_WAIT_S."""
    cluster = str(settings.cluster)
    if interrupt.signum is not None:
        why = f"the caller was stopped ({signal.Signals(interrupt.signum).name})"
    else:
        why = (
            f"the caller's deadline passed (DBT_RUNNER_REMOTE__DEADLINE_S={settings.deadline_s:g})"
        )
    log.warning("%s: stopping task %s", why, task_arn)
    stop_task(ecs, cluster, task_arn, f"dbt-runner remote: {why}")
    until = time.monotonic() + settings.stop_wait_s
    task = describe(ecs, cluster, task_arn)
    while task.get("lastStatus") != "STOPPED" and time.monotonic() < until:
        time.sleep(min(settings.poll_s, 1.0))
        if tail is not None:
            tail.read()
        task = describe(ecs, cluster, task_arn)
    if task.get("lastStatus") != "STOPPED":
        log.warning(
            "task %s has not stopped within %.0f s; ECS stops it", task_arn, settings.stop_wait_s
        )
    return Followed(task, stopped_by=interrupt.signum, timed_out=interrupt.signum is None)


def _drain(tail: LogTail, quiet_s: float) -> None:
    """Read until no event has arrived for `quiet_s` since the task stopped."""
    stopped_at = time.monotonic()
    limit = stopped_at + DRAIN_MAX_S
    while time.monotonic() < limit:
        tail.read()
        if time.monotonic() - max(tail.last_event_at, stopped_at) >= quiet_s:
            return
        time.sleep(min(0.25, quiet_s / 4))
