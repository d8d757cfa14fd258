"""Looking a state up, the same way for `run` and `plan`, and fetching it for dbt.

`look_up_state` reads (never writes) the last good state of the env a job defers to
and asks the ledger whether this run may use it; `fetch_state` puts a usable one where
dbt reads it (`--state`) and says what it found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbt_runner.config import STATE_JOBS, Job, Settings
from dbt_runner.report.model import StateInfo
from dbt_runner.state import ledger
from dbt_runner.state.kept import NODES, SOURCES
from dbt_runner.state.store import (
    MANIFEST,
    Baseline,
    StateError,
    StatePointer,
    StateStore,
    Unsettled,
    open_state,
)
from dbt_runner.workspace.inputs import Inputs
from dbt_runner.workspace.target import Target

log = logging.getLogger(__name__)


@dataclass
class FoundState:
    """The last good state of the environment a job defers to, and whether this run
    may use it: the same answer for `run` (which then fetches it) and `plan`."""

    store: StateStore
    pointer: StatePointer | None = None
    manifest: bytes | None = None
    problem: str | None = None  # why it is not used; None with a pointer: usable
    unsettled: Unsettled | None = None  # what unpromoted runs built into its target

    @property
    def usable(self) -> bool:
        return self.pointer is not None and self.manifest is not None and self.problem is None

    def baseline_extra(self) -> tuple[str, ...]:
        """Nodes to build besides the changes: those unpromoted runs rebuilt."""
        return tuple(self.unsettled.nodes) if self.unsettled else ()

    def why_not(self, job: Job) -> str:
        why = self.problem or "no state yet"
        url = self.store.url()
        return f"{job.value} job without usable state at {url} ({why}): building everything"


def look_up_state(
    settings: Settings,
    project: str,
    target: Target | None,
    dbt_version: str | None,
    inputs_now: Callable[[list[str]], Inputs] | None,
) -> FoundState | None:
    """The state this job would compare with and defer to, checked by the ledger; None
    when the job keeps no state. `inputs_now`: this run's vars and environment
    variables (Workspace.inputs). Reads, never writes."""
    store = open_state(settings, project, settings.defer_env)
    if store is None:
        return None
    found = FoundState(store)
    try:
        found.pointer = store.latest()
    except StateError as exc:
        found.problem = str(exc)
        return found
    if found.pointer is None or settings.job not in STATE_JOBS:
        return found
    try:
        data, metadata = store.manifest(found.pointer)
    except StateError as exc:
        found.problem = str(exc)
        return found
    own_env = settings.defer_env == settings.env
    if own_env and target is not None:
        found.unsettled = store.unsettled(target)
    found.problem = ledger.distrust(
        found.pointer,
        metadata,
        project=project,
        target=target,
        own_env=own_env,
        job=settings.job,
        dbt_version=dbt_version,
        unsettled=found.unsettled,
        inputs_now=inputs_now,
    )
    found.manifest = data if found.problem is None else None
    return found


def fetch_state(
    settings: Settings,
    found: FoundState | None,
    project_dir: Path,
    target_path: Path,
    dbt_version: str | None,
) -> tuple[Baseline | None, StateInfo | None]:
    """Put the found state where dbt reads it. Returns the folder holding its manifest
    (and, for a fresh job, its sources.json) for a build of what changed, or None to
    build everything (no state yet, or one the ledger does not trust). Restores dbt's
    parse cache from it when it fits this project and dbt (dbt checks it again)."""
    if found is None:
        return None, None
    info = StateInfo(url=found.store.url(), mode="full")
    pointer = found.pointer
    if pointer is not None:
        info.warm_parse = found.store.restore_partial_parse(
            pointer, target_path, project_dir, dbt_version
        )
    baseline = None
    if found.usable and pointer is not None and found.manifest is not None:
        folder = _state_folder(found.store, pointer, found.manifest, settings)
        baseline = Baseline(folder, found.baseline_extra())
        info.mode, info.deferred_to = "slim", pointer.run_id
        info.unsettled = list(baseline.unsettled)
        log.info("comparing with, and deferring to, run %s (%s)", pointer.run_id, info.url)
    elif settings.job in STATE_JOBS:
        info.reason = found.why_not(settings.job)
        log.warning("%s", info.reason)
    if info.warm_parse:
        log.info("parse cache restored from the state")
    return baseline, info


def _state_folder(
    store: StateStore, pointer: StatePointer, manifest: bytes, settings: Settings
) -> Path:
    """The state's manifest in the run's folder, with the files kept beside it."""
    folder = settings.run_dir / "state"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_bytes(manifest)
    for name in (NODES, SOURCES):
        body = store.kept(pointer, name)
        if body is not None:
            (folder / name).write_bytes(body)
    return folder
