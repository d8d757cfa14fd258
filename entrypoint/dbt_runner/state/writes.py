"""The write log: what has been written into a target, by whom, and whether they said
what they wrote.

A state is a claim about relations in one target (adapter, server, database, schema).
Anything that writes into that target afterwards can make the claim false: a run of
the env that was not promoted, a run of another env sharing the schema, a `dbt-runner
dbt -- run` by hand, a retry. So every command that builds appends a write to the
target's log before dbt starts (open: it has not said what it wrote), and closes it
with the relations it touched when it ends. A run killed outright leaves its write
open: whatever trusts the state after it cannot know what it wrote.

A promoted state records its horizon: the last write it had read when its run looked
the log up, the writes that were still open then, and the runs whose writes it covers
(its own; a retry's, the runs it completes). A slim job builds, besides the changes,
every relation a later write touched; a later write that is still open, or that
rewrote the whole target, leaves nothing of the state to trust (ledger.py).

One log per project and target, shared by every env, under the state URL:
`<project>/_targets/<digest of the target>.json` (storage/keys.py). Updated with
conditional writes, so two runs appending at once both land.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field, ValidationError

from dbt_runner.errors import InfraError
from dbt_runner.report.parts import Horizon, Target, now
from dbt_runner.storage import Storage
from dbt_runner.storage.keys import target_log_key

log = logging.getLogger(__name__)

KEEP = 200  # writes a log keeps: a state whose horizon is older is not trusted
LISTED = 2000  # a write touching more relations is kept as `whole`: the log stays small
ATTEMPTS = 20  # conditional updates tried before giving up (another writer each time)


class Write(BaseModel):
    """One command's writes into the target."""

    seq: int
    run_id: str
    env: str
    pr: str | None = None
    job: str = Field(description="full, slim, retry, dbt run, ...")
    started_at: datetime = Field(default_factory=now)
    completes: list[str] = Field(
        default_factory=list, description="A retry: the runs it completes, nearest first"
    )
    open: bool = Field(default=True, description="Began writing and has not said what")
    nodes: list[str] = Field(
        default_factory=list,
        description="What it touched, as dbt selectors: relations it built, and the views "
        "a rebuild dropped with them",
    )
    whole: bool = Field(default=False, description="It may have rewritten every relation")
    why_whole: str | None = None

    def describe(self) -> str:
        where = f"{self.env}" + (f", pull request {self.pr}" if self.pr else "")
        started = f"{self.started_at:%Y-%m-%d %H:%M:%S} UTC"
        return f"run {self.run_id} ({where}, {self.job}, started {started})"

    def chain(self) -> set[str]:
        """This write's run and every run it completes."""
        return {self.run_id, *self.completes}


class WriteLog(BaseModel):
    target: Target
    last_seq: int = 0
    writes: list[Write] = Field(default_factory=list)

    def after(self, horizon: Horizon) -> list[Write]:
        """The writes a state with `horizon` does not cover."""
        covered = set(horizon.covers)
        return [
            write
            for write in self.writes
            if (write.seq > horizon.seq or write.seq in horizon.open)
            and write.run_id not in covered
        ]

    def reaches_back_to(self, seq: int) -> bool:
        """Whether every write after `seq` is still kept."""
        return not self.writes or self.writes[0].seq <= seq + 1

    def find(self, run_id: str) -> Write | None:
        return next((write for write in self.writes if write.run_id == run_id), None)


def log_name(target: Target) -> str:
    return hashlib.sha256(target.model_dump_json().encode()).hexdigest()[:16]


class WriteLogStore:
    """A project's write logs, one per target, in the state storage."""

    def __init__(self, storage: Storage, project: str) -> None:
        self.storage, self.project = storage, project

    def _key(self, target: Target) -> str:
        return target_log_key(self.project, log_name(target))

    def url(self, target: Target) -> str:
        return self.storage.url_for(self._key(target))

    def read(self, target: Target) -> WriteLog | None:
        """The target's log; None when nothing has been written through a runner."""
        found = self.storage.get_versioned(self._key(target))
        return None if found is None else _parse(found[0], target)

    def begin(self, target: Target, write: Write) -> Write:
        """Append `write` (open), numbered after the last; the write as appended."""
        appended: list[Write] = []

        def append(document: WriteLog) -> None:
            entry = write.model_copy(update={"seq": document.last_seq + 1, "open": True})
            document.last_seq = entry.seq
            document.writes = [*document.writes, entry][-KEEP:]
            appended[:] = [entry]

        self._update(target, append)
        return appended[0]

    def end(self, target: Target, seq: int, nodes: list[str], why_whole: str | None) -> None:
        """Close write `seq` with what it touched (`why_whole`: why it may have
        rewritten everything, when it may have).
        `target`: whose log; `seq`: the write's number; `nodes`: the selectors it touched."""
        if why_whole is None and len(nodes) > LISTED:
            why_whole = f"it touched {len(nodes)} relations"

        def close(document: WriteLog) -> None:
            for write in document.writes:
                if write.seq == seq:
                    write.open = False
                    write.whole, write.why_whole = why_whole is not None, why_whole
                    write.nodes = [] if why_whole is not None else sorted(set(nodes))

        self._update(target, close)

    def _update(self, target: Target, change: Callable[[WriteLog], None]) -> None:
        """Read, change, write back on the condition nobody wrote in between."""
        key = self._key(target)
        for _ in range(ATTEMPTS):
            found = self.storage.get_versioned(key)
            document = _parse(found[0], target) if found else WriteLog(target=target)
            change(document)
            data = document.model_dump_json().encode()
            if found is None:
                written = self.storage.put_new(key, data)
            else:
                written = self.storage.replace(key, data, found[1])
            if written is not None:
                return
            time.sleep(random.uniform(0.05, 0.3))  # another writer won: read again  # noqa: S311
        raise InfraError(f"the write log {self.storage.url_for(key)} kept changing under this run")


def _parse(data: bytes, target: Target) -> WriteLog:
    try:
        return WriteLog.model_validate_json(data)
    except ValidationError:
        # Unreadable: as if one unknown writer had begun and never said what it wrote.
        unknown = Write(seq=1, run_id="an unreadable write log", env="?", job="?")
        return WriteLog(target=target, last_seq=1, writes=[unknown])
