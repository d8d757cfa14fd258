"""State: the last good run's manifest, for slim jobs to compare with and defer to.

Layout under DBT_RUNNER_STATE_URL:
    <project>/<env>/state/runs/<run_id>/manifest.json
    <project>/<env>/state/runs/<run_id>/partial_parse.msgpack   dbt's parse cache
    <project>/<env>/state/runs/<run_id>/state.json              what latest.json said
    <project>/<env>/state/latest.json                           the pointer

Promotion writes a successful run's files under runs/<run_id>/ first and moves the
pointer last, so a failed or interrupted run never replaces the last good state and a
reader never sees a half-written one; of two racing jobs, the one that started later
keeps the pointer. Each pointer records the target its run built into.

What a run may trust and when the pointer moves are the ledger's rules (ledger.py):
this module keeps the files, looks a state up (`look_up_state`, the same answer for
`run` and `plan`), and fetches or promotes it when the ledger says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from entrypoint import ledger
from entrypoint.fresh import NODES, SOURCES, merged_nodes, promoted_sources, read_json
from entrypoint.report import RunReport, StateInfo
from entrypoint.settings import STATE_JOBS, Job, Settings
from entrypoint.storage import Storage, join_key, open_storage
from entrypoint.target import Target

if TYPE_CHECKING:
    from entrypoint.workspace import Workspace

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PARTIAL_PARSE = "partial_parse.msgpack"
POINTER = "latest.json"
STATE_INFO = "state.json"  # each kept run's own pointer, for retries of older runs


def manifest_metadata(data: bytes) -> dict[str, Any] | None:
    """A manifest's `metadata` object, decoded alone: dbt writes it first, and the rest
    (megabytes on a large project) is dbt's to read, once."""
    text = data[:65536].decode("utf-8", errors="ignore")
    start = text.find('"metadata"')
    brace = text.find("{", start) if start >= 0 else -1
    if brace < 0:
        return None
    try:
        metadata, _ = json.JSONDecoder().raw_decode(text, brace)
    except (ValueError, IndexError):
        return None
    return metadata if isinstance(metadata, dict) else None


class StateError(Exception):
    """A state that exists but cannot be trusted."""


class StatePointer(BaseModel):
    """latest.json: which run's state is the last good one."""

    run_id: str
    job: str
    started_at: datetime
    dbt_version: str | None
    adapter: str | None
    project: str
    project_dir: str
    manifest_sha256: str
    partial_parse: bool
    sources: bool = False  # sources.json: freshness taken before a build (fresh jobs)
    nodes: bool = False  # nodes.json: each node's last build and duration
    target: Target | None = None  # where its relations are (None: written before 0.2.0)


class Unsettled(BaseModel):
    """unsettled-<target>.json: what runs that were not promoted have built into a
    target since its state: the state no longer describes those relations."""

    target: Target
    nodes: list[str] = Field(default_factory=list)  # fqn: selectors of the nodes built
    building: str | None = None  # a run that began building and has not said what it built

    def key(self) -> str:
        return unsettled_name(self.target)


def unsettled_name(target: Target) -> str:
    digest = hashlib.sha256(target.model_dump_json().encode()).hexdigest()[:16]
    return f"unsettled-{digest}.json"


@dataclass(frozen=True)
class Baseline:
    """The state a slim or fresh job compares with and defers to (dbt's --state), and
    the nodes unpromoted runs have built since, which it builds again."""

    dir: Path
    unsettled: tuple[str, ...] = ()


class StateStore:
    def __init__(self, storage: Storage, project: str, env: str) -> None:
        self.storage = storage
        self.project = project
        self.prefix = join_key(project, env, "state")

    def url(self) -> str:
        return self.storage.url_for(self.prefix)

    def check_writable(self, run_id: str) -> None:
        """Promotion will be able to write this run's state (preflight)."""
        self.storage.check_writable(self._key("runs", run_id, ".dbt-runner-preflight"))

    def _key(self, *parts: str) -> str:
        return join_key(self.prefix, *parts)

    def latest(self) -> StatePointer | None:
        """The last good state, None when there is none yet."""
        data = self.storage.get_bytes(self._key(POINTER))
        if data is None:
            return None
        try:
            return StatePointer.model_validate_json(data)
        except ValidationError as exc:
            raise StateError(f"{POINTER} is unreadable ({exc.error_count()} problem(s))") from None

    def pointer_of(self, run_id: str) -> StatePointer | None:
        """The state a given (promoted) run kept, whether or not it is still the latest."""
        data = self.storage.get_bytes(self._key("runs", run_id, STATE_INFO))
        if data is None:
            return None
        try:
            return StatePointer.model_validate_json(data)
        except ValidationError:
            raise StateError(f"run {run_id}'s {STATE_INFO} is unreadable") from None

    def manifest(self, pointer: StatePointer) -> tuple[bytes, dict[str, Any]]:
        """The state's manifest.json and its metadata, intact; StateError otherwise."""
        data = self.storage.get_bytes(self._key("runs", pointer.run_id, MANIFEST))
        if data is None:
            raise StateError(f"the manifest of run {pointer.run_id} is missing")
        if hashlib.sha256(data).hexdigest() != pointer.manifest_sha256:
            raise StateError(f"the manifest of run {pointer.run_id} does not match its checksum")
        metadata = manifest_metadata(data)
        if metadata is None:
            raise StateError(f"run {pointer.run_id}'s manifest is not a dbt manifest")
        return data, metadata

    def restore_partial_parse(
        self, pointer: StatePointer, target_path: Path, project_dir: Path, dbt_version: str | None
    ) -> bool:
        """dbt's parse cache from the state, when it was made for this path and dbt."""
        if not pointer.partial_parse or pointer.dbt_version != dbt_version:
            return False
        if pointer.project_dir != str(project_dir):
            return False
        data = self.storage.get_bytes(self._key("runs", pointer.run_id, PARTIAL_PARSE))
        if data is None:
            return False
        target_path.mkdir(parents=True, exist_ok=True)
        (target_path / PARTIAL_PARSE).write_bytes(data)
        return True

    def kept(self, pointer: StatePointer, name: str) -> bytes | None:
        """Another file a good run kept with its state (sources.json, nodes.json)."""
        flag = {SOURCES: pointer.sources, NODES: pointer.nodes}.get(name, True)
        return self.storage.get_bytes(self._key("runs", pointer.run_id, name)) if flag else None

    def unsettled(self, target: Target) -> Unsettled | None:
        data = self.storage.get_bytes(self._key(unsettled_name(target)))
        if data is None:
            return None
        try:
            return Unsettled.model_validate_json(data)
        except ValidationError:  # unreadable: as if a run had begun and said nothing
            return Unsettled(target=target, building="an unreadable record")

    def mark_building(self, target: Target, run_id: str) -> Unsettled | None:
        """Before a run writes into `target`: say so, so a run killed while building
        leaves its mark. Returns the record as it was."""
        before = self.unsettled(target)
        record = (before or Unsettled(target=target)).model_copy(update={"building": run_id})
        self.storage.put_bytes(self._key(record.key()), record.model_dump_json().encode())
        return before

    def settle(
        self, target: Target, before: Unsettled | None, built: list[str], promoted: bool
    ) -> None:
        """After the run: a promoted state covers everything (the record goes); else
        the nodes it built are added to what the state no longer describes."""
        key = self._key(unsettled_name(target))
        if promoted:
            self.storage.delete([key])
            return
        nodes = sorted({*(before.nodes if before else []), *built})
        record = Unsettled(target=target, nodes=nodes, building=before.building if before else None)
        self.storage.put_bytes(key, record.model_dump_json().encode())

    def promote(
        self,
        report: RunReport,
        target_path: Path,
        project_dir: Path,
        extra: dict[str, bytes | None] | None = None,
    ) -> bool:
        """Keep a successful run's state (manifest, parse cache, and `extra` files such as
        sources.json), then point latest at it. False when a newer run's state already
        holds the pointer, or there is no manifest to keep."""
        manifest = target_path / MANIFEST
        if not manifest.is_file():
            return False
        data = manifest.read_bytes()
        cache = target_path / PARTIAL_PARSE
        self.storage.put_bytes(self._key("runs", report.run_id, MANIFEST), data)
        if cache.is_file():
            self.storage.put_file(self._key("runs", report.run_id, PARTIAL_PARSE), cache)
        kept = {name: body for name, body in (extra or {}).items() if body is not None}
        for name, body in kept.items():
            self.storage.put_bytes(self._key("runs", report.run_id, name), body)
        pointer = StatePointer(
            run_id=report.run_id,
            job=report.job,
            started_at=report.started_at,
            dbt_version=report.dbt_version,
            adapter=report.adapter,
            project=self.project,
            project_dir=str(project_dir),
            manifest_sha256=hashlib.sha256(data).hexdigest(),
            partial_parse=cache.is_file(),
            sources=SOURCES in kept,
            nodes=NODES in kept,
            target=report.target,
        )
        document = pointer.model_dump_json(indent=2).encode()
        self.storage.put_bytes(self._key("runs", report.run_id, STATE_INFO), document)
        try:
            current = self.latest()
        except StateError:
            current = None  # an unreadable pointer is replaced by a good one
        if current is not None and current.started_at > pointer.started_at:
            log.warning(
                "state not promoted: run %s, which started later, already holds it", current.run_id
            )
            return False
        self.storage.put_bytes(self._key(POINTER), document)
        return True


def _kept_files(store: StateStore, report: RunReport, target_path: Path) -> dict[str, bytes | None]:
    """What a promotion keeps beside the manifest: nodes.json (merged with the last
    state's), and sources.json: a fresh job's own (taken before its build), or the
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
    return {NODES: json.dumps(nodes).encode(), SOURCES: sources}


def open_state(settings: Settings, project: str, env: str) -> StateStore | None:
    """The state store of `env`, None when the job keeps no state."""
    if settings.state_url is None:
        return None
    return StateStore(open_storage(settings.state_url, settings.aws), project, env)


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
    settings: Settings, project: str, target: Target | None, dbt_version: str | None
) -> FoundState | None:
    """The state this job would compare with and defer to, checked by the ledger; None
    when the job keeps no state. Reads, never writes."""
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
    )
    found.manifest = data if found.problem is None else None
    return found


def fetch_state(
    settings: Settings,
    found: FoundState | None,
    project_dir: Path,
    target_path: Path,
    report: RunReport,
) -> Baseline | None:
    """Put the found state where dbt reads it. Returns the folder holding its manifest
    (and, for a fresh job, its sources.json) for a build of what changed, or None to
    build everything (no state yet, or one the ledger does not trust). Restores dbt's
    parse cache from it when it fits this project and dbt (dbt checks it again)."""
    if found is None:
        return None
    info = report.state = StateInfo(url=found.store.url(), mode="full")
    pointer = found.pointer
    if pointer is not None:
        info.warm_parse = found.store.restore_partial_parse(
            pointer, target_path, project_dir, report.dbt_version
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
    return baseline


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


@dataclass
class Claim:
    """A run building into its target, between `begin_building` and `end_building`."""

    store: StateStore
    target: Target
    before: Unsettled | None


def begin_building(
    settings: Settings, project: str, target: Target | None, run_id: str
) -> Claim | None:
    """Before dbt writes into the target: the mark a killed run leaves behind."""
    store = open_state(settings, project, settings.env)
    if store is None or target is None:
        return None
    return Claim(store, target, store.mark_building(target, run_id))


def end_building(claim: Claim, built: list[str], promoted: bool) -> None:
    """After the run, whatever happened: what it built, unless its state now covers it."""
    claim.store.settle(claim.target, claim.before, built, promoted)
    if built and not promoted:
        log.info(
            "%d node(s) built without a new state: the next slim job builds them again", len(built)
        )


def promote_state(
    settings: Settings, workspace: Workspace, report: RunReport, lease_lost: bool = False
) -> bool:
    """A run the ledger accepts becomes the state slim jobs compare with and defer to;
    any other run leaves the last good state untouched. Whether it was promoted."""
    project, target_path = workspace.project, workspace.target_path
    store = open_state(settings, project.name, settings.env)
    if store is None:
        return False
    blocker = ledger.promotion_blocker(settings, report, lease_lost)
    if blocker is not None:
        log.info("state not promoted: %s", blocker)
        return False
    promoted = store.promote(
        report, target_path, project.dir, _kept_files(store, report, target_path)
    )
    if report.state is None:
        report.state = StateInfo(url=store.url(), mode="full")
    report.state.promoted = promoted
    if promoted:
        log.info("state promoted: %s now holds run %s", store.url(), report.run_id)
    return promoted
