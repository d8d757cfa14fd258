"""Promotion: a run the ledger accepts becomes the state later jobs trust; and the
write a run appends to its target's log before it builds, closed when it ends."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dbt_runner.config import Job, Settings
from dbt_runner.report.model import RunReport
from dbt_runner.report.parts import Target
from dbt_runner.state.compiled import COMPILED, kept_compiled
from dbt_runner.state.kept import NODES, SOURCES, merged_nodes, promoted_sources, read_json
from dbt_runner.state.seeds import UnhashedSeed
from dbt_runner.state.store import StateError, StateStore, open_state
from dbt_runner.state.writes import Write, WriteLogStore
from dbt_runner.storage import Storage

if TYPE_CHECKING:
    from dbt_runner.workspace.prepare import Workspace

log = logging.getLogger(__name__)


def _kept_files(store: StateStore, report: RunReport, target_path: Path) -> dict[str, bytes | None]:
    """What a promotion keeps beside the manifest: nodes.json (merged with the last
    state's), compiled.json (each model's compiled SQL, the last state's where this run
    compiled none), and sources.json: a fresh job's own (taken before its build), or the
    last state's carried over (a freshness taken after a build could hide rows loaded
    during it; an older one only makes the next fresh job build more)."""
    try:
        previous = store.latest()
    except StateError:
        previous = None
    old_nodes = store.kept(previous, NODES) if previous else None
    nodes = merged_nodes(json.loads(old_nodes) if old_nodes else None, report)
    old_sources = store.kept(previous, SOURCES) if previous else None
    sources = old_sources
    if report.job == Job.FRESH.value:
        current = read_json(target_path / SOURCES)
        held_back = report.fresh.held_back if report.fresh else []
        sources = promoted_sources(
            current, json.loads(old_sources) if old_sources else None, held_back
        )
    old_compiled = store.kept(previous, COMPILED) if previous else None
    compiled = kept_compiled(
        target_path / "manifest.json", old_compiled, report.dbt_version, report.adapter
    )
    return {NODES: json.dumps(nodes).encode(), SOURCES: sources, COMPILED: compiled}


@dataclass
class Claim:
    """A command writing into its target, between `begin_building` and `end_building`."""

    writes: WriteLogStore
    target: Target
    write: Write


def begin_building(
    settings: Settings,
    project: str,
    target: Target | None,
    job: str,
    completes: list[str] | None = None,
    storage: Storage | None = None,
) -> Claim | None:
    """Before dbt writes into the target: an open write in its log, the mark a killed
    run leaves behind. `job`: what writes (full, slim, retry, dbt run); `completes`: a
    retry's, the runs it completes.
    `settings`: the command's; `project`: its name; `target`: where it writes (None:
    unknown, nothing recorded); `storage`: the state's, opened once by the run."""
    store = open_state(settings, project, settings.env, storage)
    if store is None or target is None:
        return None
    log_store = WriteLogStore(store.storage, project)
    write = Write(
        seq=0,
        run_id=settings.run_id,
        env=settings.env,
        pr=settings.pr,
        job=job,
        completes=completes or [],
    )
    return Claim(log_store, target, log_store.begin(target, write))


def end_building(claim: Claim, touched: list[str], why_whole: str | None) -> None:
    """After the command, whatever happened: what it touched (`why_whole`: why it may
    have rewritten every relation, when it may have)."""
    claim.writes.end(claim.target, claim.write.seq, touched, why_whole)


def promote_state(
    settings: Settings,
    workspace: Workspace,
    report: RunReport,
    blocker: str | None,
    seeds: dict[str, UnhashedSeed] | None = None,
    storage: Storage | None = None,
) -> bool:
    """A run the ledger accepts (`blocker`: its word, None to promote) becomes the state
    slim jobs compare with and defer to; any other run leaves the last good state
    untouched. Whether it was promoted. The state records the report's inputs (None:
    not known, and then the next run does not trust it), `seeds` (those dbt records by
    path) and the writes into its target it covers.
    `settings`: the run's; `workspace`: its project and dbt's target folder; `report`: the
    run's; `storage`: the state's, opened once by the run."""
    project, target_path = workspace.project, workspace.target_path
    store = open_state(settings, project.name, settings.env, storage)
    if store is None:
        return False
    if blocker is not None:
        log.info("state not promoted: %s", blocker)
        return False
    kept = _kept_files(store, report, target_path)
    horizon = report.state.horizon if report.state is not None else None
    promoted = store.promote(report, target_path, project.dir, kept, report.inputs, seeds, horizon)
    if promoted:
        log.info("state promoted: %s now holds run %s", store.url(), report.run_id)
    return promoted
