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
this module keeps the files; lookup.py looks a state up (the same answer for `run` and
`plan`) and fetches it, promotion.py promotes one when the ledger says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from dbt_runner.config import Settings
from dbt_runner.report.model import RunReport
from dbt_runner.report.parts import Horizon, Inputs, Target
from dbt_runner.state.kept import NODES, SOURCES
from dbt_runner.state.seeds import UnhashedSeed
from dbt_runner.storage import Storage, join_key, open_storage
from dbt_runner.storage.keys import state_key

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
    inputs: Inputs | None = None  # the vars and env vars its parse read (None: before 0.2.0)
    seeds: dict[str, UnhashedSeed] = Field(default_factory=dict)  # dbt records by path only
    horizon: Horizon | None = None  # the target's writes it covers (None: not known)


@dataclass(frozen=True)
class Baseline:
    """The state a slim or fresh job compares with and defers to (dbt's --state), and
    what it builds besides the changes dbt sees: what was written into its target since
    (writes.py), and the seeds dbt compares by path that changed (with what reads them)."""

    dir: Path
    unsettled: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()

    def besides(self) -> list[str]:
        """Selectors to build besides `state:modified+`."""
        return [*self.unsettled, *self.seeds]


class StateStore:
    def __init__(self, storage: Storage, project: str, env: str) -> None:
        self.storage = storage
        self.project = project
        self.prefix = state_key(project, env)

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
        """dbt's parse cache from the state, when it was made for this path and dbt.
        `pointer`: the state; `target_path`: dbt's target folder; `project_dir`: the
        project's path now; `dbt_version`: this run's dbt's."""
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

    def promote(
        self,
        report: RunReport,
        target_path: Path,
        project_dir: Path,
        extra: dict[str, bytes | None] | None = None,
        inputs: Inputs | None = None,
        seeds: dict[str, UnhashedSeed] | None = None,
        horizon: Horizon | None = None,
    ) -> bool:
        """Keep a successful run's state (manifest, parse cache, and `extra` files such as
        sources.json), then point latest at it. False when a newer run's state already
        holds the pointer, or there is no manifest to keep.
        `report`: the run's; `target_path`: dbt's target folder (its manifest and parse
        cache); `project_dir`: the project's path; `extra`: files kept beside them;
        `inputs`: the vars and env vars its parse read; `seeds`: the seeds dbt records by
        path; `horizon`: the target's writes it covers."""
        manifest = target_path / MANIFEST
        if not manifest.is_file():
            return False
        data = manifest.read_bytes()
        cache = target_path / PARTIAL_PARSE
        kept = {name: body for name, body in (extra or {}).items() if body is not None}
        self._keep_files(report.run_id, data, cache, kept)
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
            inputs=inputs,
            seeds=seeds or {},
            horizon=horizon,
        )
        return self._point_at(pointer)

    def _point_at(self, pointer: StatePointer) -> bool:
        """The run's own copy of its pointer, then latest.json, unless a run that
        started later holds it."""
        document = pointer.model_dump_json(indent=2).encode()
        self.storage.put_bytes(self._key("runs", pointer.run_id, STATE_INFO), document)
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

    def _keep_files(
        self, run_id: str, manifest: bytes, cache: Path, kept: dict[str, bytes]
    ) -> None:
        """A run's state files under runs/<run_id>/, before any pointer names them."""
        self.storage.put_bytes(self._key("runs", run_id, MANIFEST), manifest)
        if cache.is_file():
            self.storage.put_file(self._key("runs", run_id, PARTIAL_PARSE), cache)
        for name, body in kept.items():
            self.storage.put_bytes(self._key("runs", run_id, name), body)


def open_state(
    settings: Settings, project: str, env: str, storage: Storage | None = None
) -> StateStore | None:
    """The state store of `env`, None when the job keeps no state. `settings`: where
    state is (DBT_RUNNER_STATE_URL) and the AWS settings to reach it; `project`: the
    dbt project's name, a folder of its own; `storage`: the run's own state storage,
    opened once (opened here when None)."""
    if settings.state_url is None:
        return None
    return StateStore(storage or open_storage(settings.state_url, settings.aws), project, env)
