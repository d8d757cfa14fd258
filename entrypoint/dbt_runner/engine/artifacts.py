"""dbt's run_results.json, kept per phase: every dbt command overwrites it, and the job's
own (what `dbt retry` reads) is the last node phase's, not docs'."""

from __future__ import annotations

import shutil
from pathlib import Path

from dbt_runner.engine.kinds import NODE_COMMANDS


def keep_run_results(target_path: Path, phase: str) -> None:
    """A copy of the run_results.json a phase left, under phases/<phase>/."""
    source = target_path / "run_results.json"
    if source.is_file():
        copy = target_path / "phases" / phase / "run_results.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)


def restore_job_run_results(target_path: Path, ran: list[str]) -> None:
    """Leave the job's node run results as run_results.json: those of the last node
    phase among `ran` (the phases that ran, in order)."""
    for name in reversed(ran):
        copy = target_path / "phases" / name / "run_results.json"
        if name in NODE_COMMANDS and copy.is_file():
            shutil.copyfile(copy, target_path / "run_results.json")
            return
