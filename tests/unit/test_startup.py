"""dbt's import with the collector paused, then frozen (entrypoint/dbt_runner/engine/startup.py)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc, sys
from dbt_runner.engine.startup import import_dbt
{before}
import_dbt()
assert "dbt.cli.main" in sys.modules
print(gc.isenabled(), gc.get_freeze_count())
"""


def _run(before: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(before=before)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


def test_import_leaves_collection_on_and_freezes_what_dbt_created() -> None:
    enabled, frozen = _run("")
    assert enabled == "True"
    # dbt's import creates hundreds of thousands of tracked objects.
    assert frozen > 100_000


def test_import_keeps_collection_off_when_the_caller_turned_it_off() -> None:
    enabled, _ = _run("gc.disable()")
    assert enabled == "False"


def test_dbt_console_hides_the_interrupt_traceback_only() -> None:
    import json
    import logging

    from dbt_runner.logs import without_interrupt_traces

    def shown(message: str) -> bool:
        record = logging.LogRecord("stdout_log", logging.ERROR, "", 0, message, None, None)
        return without_interrupt_traces(record)

    trace = "Traceback (most recent call last):\n  File ...\nKeyboardInterrupt"
    assert not shown("\x1b[0m06:43:14  " + trace)
    assert not shown("\x1b[0m06:43:14  Encountered an error:\n")
    assert not shown(json.dumps({"info": {"msg": trace, "name": "MainStackTrace"}}))
    # Every other line, errors included, is shown.
    assert shown("06:43:14  Encountered an error:\nRuntime Error: relation does not exist")
    assert shown("06:43:14  Traceback (most recent call last):\n ValueError: x")
    assert shown('{"info": {"msg": "1 of 5 OK created sql view model"}}')
