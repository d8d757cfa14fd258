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
from dbt_runner.report.parts import Horizon, Inputs, Target
from dbt_runner.state import ledger
from dbt_runner.state.compiled import COMPILED
from dbt_runner.state.kept import NODES, SOURCES
from dbt_runner.state.lease import current_holder
from dbt_runner.state.seeds import changed_seeds
from dbt_runner.state.store import (
    MANIFEST,
    Baseline,
    StateError,
    StatePointer,
    StateStore,
    open_state,
)
from dbt_runner.state.writes import WriteLog, WriteLogStore

log = logging.getLogger(__name__)


@dataclass
class FoundState:
    """The last good state of the environment a job defers to, and whether this run
    may use it: the same answer for `run` (which then fetches it) and `plan`."""

    store: StateStore
    pointer: StatePointer | None = None
    manifest: bytes | None = None
    problem: str | None = None  # why it is not used; None with a pointer: usable
    writes: WriteLog | None = None  # what was written into this run's target, and by whom
    horizon: Horizon | None = None  # what this run's own state would cover of those
    seeds: tuple[str, ...] = ()  # seeds dbt compares by path that changed since, and theirs

    @property
    def usable(self) -> bool:
        return self.pointer is not None and self.manifest is not None and self.problem is None

    def baseline(self, folder: Path) -> Baseline:
        """The state in `folder`, with what to build besides the changes dbt sees: what
        was written into its target since, the changed seeds dbt compares by path."""
        return Baseline(folder, self.unsettled(), self.seeds)

    def unsettled(self) -> tuple[str, ...]:
        """What writes the state does not cover touched (each write names them)."""
        horizon = self.pointer.horizon if self.pointer is not None else None
        if self.writes is None or horizon is None:
            return ()
        later = self.writes.after(horizon)
        return tuple(sorted({node for write in later for node in write.nodes}))

    def why_not(self, job: Job) -> str:
        why = self.problem or "no state yet"
        url = self.store.url()
        return f"{job.value} job without usable state at {url} ({why}): building everything"


def look_up_state(
    settings: Settings,
    project: str,
    target: Target | None,
    dbt_version: str | None,
    inputs_now: Callable[[list[str]], Inputs],
    project_dir: Path,
) -> FoundState | None:
    """The state this job would compare with and defer to, checked by the ledger; None
    when the job keeps no state. `inputs_now`: this run's vars and environment
    variables (Workspace.inputs); `project_dir`: the project's files as they are now.
    Reads, never writes.
    `settings`: the run's; `project`: its name; `target`: the target it builds into;
    `dbt_version`: its dbt's."""
    store = open_state(settings, project, settings.defer_env)
    if store is None:
        return None
    found = FoundState(store)
    own_env = settings.defer_env == settings.env
    if target is not None:
        found.writes = WriteLogStore(store.storage, project).read(target)
        found.horizon = horizon_now(settings, project, found.writes)
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
    found.problem = ledger.distrust(
        found.pointer,
        metadata,
        project=project,
        target=target,
        own_env=own_env,
        job=settings.job,
        dbt_version=dbt_version,
        writes=found.writes if own_env else None,
        inputs_now=inputs_now,
    )
    found.manifest = data if found.problem is None else None
    if found.problem is None and found.pointer is not None:
        found.seeds = tuple(changed_seeds(found.pointer.seeds, project_dir))
    return found


def horizon_now(settings: Settings, project: str, writes: WriteLog | None) -> Horizon:
    """What a state this run promotes covers of its target's writes: every write so far,
    but those still open by a run that is alive (it may write after this run built)."""
    if writes is None:
        return Horizon(seq=0, covers=[settings.run_id])
    live = [
        write.seq
        for write in writes.writes
        if write.open and _alive(settings, project, write.run_id, write.env, write.pr)
    ]
    return Horizon(seq=writes.last_seq, open=live, covers=[settings.run_id])


def _alive(settings: Settings, project: str, run_id: str, env: str, pr: str | None) -> bool:
    """Whether `run_id` holds its env's lease now (a killed run's has expired)."""
    holder = current_holder(settings, project, env, pr)
    return holder is not None and holder.run_id == run_id


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
    parse cache from it when it fits this project and dbt (dbt checks it again).
    `settings`: the run's; `found`: what `look_up_state` found; `project_dir`: the project
    (the parse cache's path); `target_path`: dbt's target folder; `dbt_version`: this run's
    dbt's."""
    if found is None:
        return None, None
    info = StateInfo(url=found.store.url(), mode="full", horizon=found.horizon)
    pointer = found.pointer
    if pointer is not None:
        info.warm_parse = found.store.restore_partial_parse(
            pointer, target_path, project_dir, dbt_version
        )
    baseline = None
    if found.usable and pointer is not None and found.manifest is not None:
        folder = _state_folder(found.store, pointer, found.manifest, settings)
        baseline = found.baseline(folder)
        info.mode, info.deferred_to = "slim", pointer.run_id
        info.unsettled, info.seeds_changed = list(baseline.unsettled), list(baseline.seeds)
        if baseline.seeds:
            log.info(
                "seeds dbt compares by path only changed since the state; building them "
                "and what reads them: %s",
                ", ".join(baseline.seeds),
            )
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
    for name in (NODES, SOURCES, COMPILED):
        body = store.kept(pointer, name)
        if body is not None:
            (folder / name).write_bytes(body)
    return folder
