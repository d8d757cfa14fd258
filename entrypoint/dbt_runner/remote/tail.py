"""A task's CloudWatch log stream, read forward from its start: every event written
once, in order, as the task writes it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from dbt_runner.aws import error_code


def _print(line: str) -> None:
    print(line, flush=True)


class LogTail:
    """`logs`: boto3's CloudWatch Logs client; `group`, `stream`: the task's awslogs
    stream; `write`: where each message goes (stdout)."""

    def __init__(self, logs: Any, group: str, stream: str, write: Callable[[str], None] = _print):
        self.logs, self.group, self.stream, self.write = logs, group, stream, write
        self.token: str | None = None
        self.events = 0
        self.last_event_at = time.monotonic()

    def read(self) -> int:
        """Write the events that arrived since the last read; how many."""
        count = 0
        while True:
            answer = self._page()
            if answer is None:
                break
            for event in answer.get("events", []):
                self.write(str(event["message"]).rstrip("\n"))
            count += len(answer.get("events", []))
            token = answer.get("nextForwardToken")
            done = not answer.get("events") or token == self.token
            self.token = token or self.token
            if done:
                break
        if count:
            self.events += count
            self.last_event_at = time.monotonic()
        return count

    def _page(self) -> dict[str, Any] | None:
        request: dict[str, Any] = {
            "logGroupName": self.group,
            "logStreamName": self.stream,
            "startFromHead": True,
        }
        if self.token:
            request["nextToken"] = self.token
        try:
            page: dict[str, Any] = self.logs.get_log_events(**request)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None  # the stream starts with the container
            print(
                f"log stream {self.stream} could not be read ({error_code(exc)})", file=sys.stderr
            )
            return None
        return page
