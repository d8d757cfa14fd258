"""The run's guard: SIGINT, SIGTERM and the run timeout (DBT_RUNNER_TIMEOUT_S) stop a
run the same way.

The first of them raises KeyboardInterrupt in the main thread while the run is armed:
dbt cancels its queries and the runner goes on to record what finished, publish,
report and notify. Later signals, and any that arrive while finishing, are noted and
ignored: finishing is bounded by its own timeouts. ECS and Kubernetes have no run
timeout of their own, so a hung query would keep a task alive for ever.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from dbt_runner.engine.session import TimeLimitReached
from dbt_runner.errors import ExitCode, RunnerError

log = logging.getLogger(__name__)

_CODES = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}


# Everything after a stop fits in this many seconds from the signal: docker stop gives a
# container 10 s before SIGKILL (ECS and Kubernetes 30 s). The report's final state and
# the lease come first; notifying gets what is left but FINAL_WRITE_S.
STOP_BUDGET_S = 8.0
FINAL_WRITE_S = 1.0


class Stopped(RunnerError):
    """The run was stopped from outside: a signal, or the run timeout."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


class Guard:
    def __init__(self, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.exit_code: int | None = None  # set by the first stop
        self.stopped_at: float | None = None  # when (monotonic)
        self.signal_name: str | None = None  # the first stop's signal, if a signal
        self.armed = False
        self.ends_at: float | None = None  # when the run timeout passes (monotonic)
        self.interrupting = False  # a step's time limit asked for the next SIGALRM
        self.main_thread = threading.main_thread().ident

    @property
    def reason(self) -> str:
        if self.exit_code == ExitCode.TIMEOUT:
            return f"timed out after {self.timeout_s:g} s (DBT_RUNNER_TIMEOUT_S)"
        return f"stopped by {self.signal_name or 'a signal'}"

    def stopped(self) -> Stopped | None:
        """The stop, as the error the report records; None when nothing stopped the run."""
        if self.exit_code is None:
            return None
        if self.exit_code == ExitCode.TIMEOUT:
            message = f"run timeout of {self.timeout_s:g} s reached (DBT_RUNNER_TIMEOUT_S)"
        else:
            message = self.reason
        return Stopped(message, self.exit_code)

    def time_left(self) -> float | None:
        """Seconds finishing may still take after a stop (None: no stop, no bound)."""
        if self.stopped_at is None:
            return None
        return max(0.0, STOP_BUDGET_S - (time.monotonic() - self.stopped_at))

    def notify_budget(self) -> float | None:
        """Seconds notifying may take in all: what is left after a stop, but the final
        write's; else the settings' own timeouts."""
        left = self.time_left()
        return None if left is None else max(0.0, left - FINAL_WRITE_S)

    def _stop(self, code: int, what: str) -> None:
        first = self.exit_code is None
        if first:
            self.stopped_at = time.monotonic()
        self.exit_code = self.exit_code or code
        log.warning("%s: stopping, then writing the report", what)
        if self.armed and first:
            raise KeyboardInterrupt

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.signal_name = self.signal_name or name
        self._stop(_CODES[signal.Signals(signum)], f"received {name}")

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        run_timeout = self.ends_at is not None and time.monotonic() >= self.ends_at
        if self.interrupting and not run_timeout:
            self.interrupting = False
            if self.armed and self.exit_code is None:
                raise TimeLimitReached
            return
        self._stop(ExitCode.TIMEOUT, f"the run reached DBT_RUNNER_TIMEOUT_S={self.timeout_s:g}")

    def interrupt(self) -> None:
        """Stop the dbt command in flight, from any thread, as the timeout would, but
        with TimeLimitReached: a step's own time limit, not the end of the run."""
        if self.main_thread is None or not self.armed:
            return
        self.interrupting = True
        signal.pthread_kill(self.main_thread, signal.SIGALRM)

    @contextmanager
    def installed(self) -> Iterator[Guard]:
        """Handle the stops, and arm the timeout, for the duration of the run."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _CODES}
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_alarm)
        if self.timeout_s:
            self.ends_at = time.monotonic() + self.timeout_s
            signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
        self.armed = True
        try:
            yield self
        finally:
            self.disarm()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def disarm(self) -> None:
        """From here on the run finishes, whatever arrives."""
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
