"""Running the comparisons through the engine, each within its time limit.

One dbt command compares every model (each dbt command costs a graph build, seconds on
a large project). The template says when each model's comparison begins; a timer per
comparison stops the command through the session when one takes too long (dbt cancels
its query, as for a stop), that model is "not compared", and a new command goes on
with the models after it. A stop of the run itself (a signal, the run timeout) ends
the comparing at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.nodes import clean
from dbt_runner.engine.session import Interrupted, TimeLimitReached, exception_message
from dbt_runner.impact.plan import Comparison
from dbt_runner.impact.program import is_query, program, said

if TYPE_CHECKING:
    from dbt_runner.engine.session import DbtSession


@dataclass
class Raw:
    """One model's findings as the template logged them, or why there are none."""

    data: dict[str, Any] | None = None
    seconds: float = 0.0
    not_compared: str | None = None


@dataclass
class Comparing:
    """The comparisons of one impact step: what each found, the queries issued."""

    session: DbtSession
    time_limit_s: float
    examples: int
    found: dict[str, Raw] = field(default_factory=dict)
    queries: int = 0
    current: str | None = None
    began: float = 0.0
    expired: str | None = None  # the comparison the time limit stopped
    timer: threading.Timer | None = None

    def run(self, comparisons: list[Comparison]) -> dict[str, Raw]:
        pending = list(comparisons)
        while pending:
            result = self._command(pending)
            pending = self._after(result, pending)
        return self.found

    def _command(self, comparisons: list[Comparison]) -> Any:
        self.expired = self.current = None
        try:
            return self.session.render_inline(program(comparisons, self.examples), self.listen)
        finally:
            self._disarm()

    def _after(self, result: Any, pending: list[Comparison]) -> list[Comparison]:
        """What is left to compare after a command: nothing when it finished, else the
        models after the one a time limit or an error stopped (said as not compared)."""
        exception = result.exception
        if isinstance(exception, KeyboardInterrupt) and not isinstance(exception, TimeLimitReached):
            raise Interrupted("impact")
        left = [c for c in pending if c.unique_id not in self.found]
        if not left or (self.expired is not None and self.expired in self.found):
            return left  # done; or the slow one finished as its limit came: go on
        stopped = self.current or left[0].unique_id
        if self.expired == stopped:
            why = f"took longer than {self.time_limit_s:g} s (DBT_RUNNER_PR_IMPACT__TIMEOUT_S)"
        else:
            why = _error(result)
        elapsed = round(time.monotonic() - self.began, 3) if self.current else 0.0
        self.found[stopped] = Raw(seconds=elapsed, not_compared=why)
        return [c for c in left if c.unique_id != stopped]

    def listen(self, event: Any) -> None:
        """dbt's events, on dbt's threads: queries counted, the template's words kept."""
        if is_query(event):
            self.queries += 1
            return
        message = said(event)
        if message is None:
            return
        kind, data = message
        if kind == "begin":
            self._begin(data["id"])
        else:
            self.found[data["id"]] = Raw(data, round(time.monotonic() - self.began, 3))
            self.current = None
            self._disarm()

    def _begin(self, unique_id: str) -> None:
        self._disarm()
        self.current, self.began = unique_id, time.monotonic()
        self.timer = threading.Timer(self.time_limit_s, self._expire, args=(unique_id,))
        self.timer.daemon = True
        self.timer.start()

    def _expire(self, unique_id: str) -> None:
        if self.current == unique_id and self.session.interrupt is not None:
            self.expired = unique_id
            self.session.interrupt()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _error(result: Any) -> str:
    """dbt's own words for a comparison that failed (a query the warehouse refused)."""
    if result.exception is not None:
        return f"the comparison failed: {exception_message(result.exception)}"
    for node in getattr(result.result, "results", None) or []:
        if getattr(node, "message", None):
            return f"the comparison failed: {clean(str(node.message))}"
    return "the comparison failed (see dbt.log)"
