"""dbt reads a state's manifest once per process (engine/previous.py)."""

from __future__ import annotations

import os
import time
from argparse import Namespace
from pathlib import Path

from dbt_runner.engine.previous import state_manifest
from dbt_runner.engine.startup import import_dbt


def test_every_command_of_a_run_shares_one_read_of_the_state(tmp_path: Path) -> None:
    import_dbt()
    from dbt.contracts.graph.manifest import Manifest
    from dbt.contracts.state import PreviousState
    from dbt.flags import set_flags

    set_flags(Namespace(SEND_ANONYMOUS_USAGE_STATS=False))  # type: ignore[no-untyped-call]
    path = tmp_path / "manifest.json"
    Manifest().writable_manifest().write(str(path))
    first = PreviousState(tmp_path, tmp_path / "target", tmp_path)
    second = PreviousState(tmp_path, tmp_path / "target", tmp_path)
    assert isinstance(first.manifest, Manifest)
    assert second.manifest is first.manifest
    assert state_manifest(tmp_path) is first.manifest  # for the children step's names

    later = time.time_ns() + 10**9  # the state written again: read again
    os.utime(path, ns=(later, later))
    third = PreviousState(tmp_path, tmp_path / "target", tmp_path)
    assert isinstance(third.manifest, Manifest) and third.manifest is not first.manifest
    assert state_manifest(tmp_path) is third.manifest
    assert PreviousState(tmp_path / "none", tmp_path / "target", tmp_path).manifest is None
