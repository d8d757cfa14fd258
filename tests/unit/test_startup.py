"""dbt's import with the collector paused, then frozen (entrypoint/dbt_runner/engine/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


def test_settle_freezes_what_lives_on_and_not_the_young_garbage() -> None:
    check = """
import gc
from dbt_runner.engine.startup import settle
class Node: pass
gc.collect()
gc.freeze()  # what the interpreter and the imports made: not this test's
kept = [Node() for _ in range(50_000)]
for _ in range(1_000):  # garbage: cycles the young collection frees before the freeze
    a, b = Node(), Node(); a.b, b.a = b, a
del a, b
frozen = gc.get_freeze_count()
settle()
print(gc.isenabled(), gc.get_freeze_count() - frozen, gc.get_count()[0])
"""
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "True"
    assert 50_000 <= int(out[1]) < 50_100  # the kept nodes, not the 4,000 objects in cycles


def test_dbt_defaults_turn_fast_test_edges_on_unless_the_job_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dbt_runner.engine.startup import FAST_TEST_EDGES, dbt_defaults

    monkeypatch.delenv(FAST_TEST_EDGES, raising=False)
    dbt_defaults()
    assert os.environ[FAST_TEST_EDGES] == "true"
    monkeypatch.setenv(FAST_TEST_EDGES, "false")  # dbt's default, asked for
    dbt_defaults()
    assert os.environ[FAST_TEST_EDGES] == "false"
