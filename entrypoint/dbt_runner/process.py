"""This process: when it started, and how it ends.

The report's clock starts when the process did (the imports before `main()` are part
of what a job costs), and a verb that is done ends the process at once: everything is
written and flushed by then, and the interpreter's teardown of dbt's objects (about
0.4 s after a job) is time nobody should wait for.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

# /proc/<pid>/stat: the fields after the command's name start at field 3; starttime is 22.
STARTTIME_FIELD = 22 - 3


def started_at() -> datetime:
    """When this process started (from the kernel, to the clock tick); now() where that
    cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        since_boot = int(fields[STARTTIME_FIELD]) / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot
    except (OSError, ValueError, IndexError, AttributeError):
        return datetime.now(UTC)
    return datetime.now(UTC) - timedelta(seconds=max(age, 0.0))


def end(code: int) -> NoReturn:
    """Exit with `code` now: the exit handlers run (log handlers flushed,
    multiprocessing's semaphores released), the standard streams flushed, the
    interpreter's teardown skipped."""
    atexit._run_exitfuncs()  # what a normal exit runs first, without the teardown after
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to flush
            stream.flush()
    os._exit(code)
