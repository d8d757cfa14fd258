"""dbt's import with the collector paused, then frozen (entrypoint/startup.py)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc, sys
from entrypoint.startup import import_dbt
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
