"""The lease: one run at a time per project and env (and pull request).

Two overlapping jobs of one env (an hourly fresh job that runs long, a manual run
during the schedule) would build the same relations and race for the state. So a run
that writes to the warehouse takes the env's lease before dbt starts, renews it while
it runs, and gives it back when it has finished. The lease is one small object in the
state store (the artifacts storage when there is none), taken with a conditional
write (S3: `If-None-Match: *`, then `If-Match` on its ETag; file://: the same under
an exclusive lock). A lease its holder stopped renewing (a killed run's) expires after
DBT_RUNNER_LEASE_TTL_S; the next run takes it over with a compare-and-swap, so of two
runs that find it expired, one wins.

What a run does when another holds the lease is DBT_RUNNER_CONCURRENCY's choice:
`skip` (the run ends at once with status `skipped`, exit 0), `wait` (for at most
DBT_RUNNER_CONCURRENCY_WAIT_S) or `fail` (exit 4).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ValidationError

from dbt_runner.config import Concurrency, Settings
from dbt_runner.errors import InfraError, RunnerError
from dbt_runner.storage import Storage, open_storage
from dbt_runner.storage.keys import lease_key

log = logging.getLogger(__name__)

POLL_S = 5.0  # how often `wait` looks again (at most: a third of the TTL when shorter)


class Holder(BaseModel):
    """lease.json: which run holds the env, and until when unless it renews."""

    run_id: str
    job: str
    started_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def describe(self) -> str:
        return f"run {self.run_id} ({self.job}, started {self.started_at:%Y-%m-%d %H:%M:%S} UTC)"


def _now() -> datetime:
    return datetime.now(UTC)


class Lease:
    """One run's hold on an env: acquire, renew in the background, release."""

    def __init__(self, storage: Storage, key: str, run_id: str, job: str, ttl_s: float) -> None:
        self.storage, self.key = storage, key
        self.run_id, self.job, self.ttl_s = run_id, job, ttl_s
        self.started_at = _now()
        self.version: str | None = None  # what we last wrote: held while not None
        self.lost = False  # another run took it over while we held it
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _record(self) -> bytes:
        holder = Holder(
            run_id=self.run_id,
            job=self.job,
            started_at=self.started_at,
            expires_at=_now() + timedelta(seconds=self.ttl_s),
        )
        return holder.model_dump_json().encode()

    def try_acquire(self) -> Holder | None:
        """Take the lease; the live run that holds it otherwise."""
        self.version = self.storage.put_new(self.key, self._record())
        if self.version is not None:
            return None
        found = self.storage.get_versioned(self.key)
        if found is None:  # released in between: try once more
            self.version = self.storage.put_new(self.key, self._record())
            return None if self.version is not None else self._holder_now()
        data, version = found
        holder = _parse(data)
        if holder is not None and not holder.expired(_now()):
            return holder
        # Expired (its run was killed), or unreadable: take it over, if nobody else did.
        gone = holder.describe() if holder else "an unreadable lease"
        self.version = self.storage.replace(self.key, self._record(), version)
        if self.version is None:
            return self._holder_now()
        log.warning("the lease of %s had expired: taken over from %s", self.key, gone)
        return None

    def _holder_now(self) -> Holder:
        found = self.storage.get_versioned(self.key)
        holder = _parse(found[0]) if found else None
        if holder is None:
            raise InfraError(f"the lease {self.storage.url_for(self.key)} could not be taken")
        return holder

    def start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew_until_stopped, daemon=True)
        self._renewer.start()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            if not self.renew():
                return

    def renew(self) -> bool:
        if self.version is None:
            return False
        try:
            self.version = self.storage.replace(self.key, self._record(), self.version)
        except RunnerError as exc:
            log.warning("the lease could not be renewed (will retry): %s", exc.message)
            return True
        if self.version is None:
            self.lost = True
            log.warning("the lease %s was taken over by another run", self.key)
            return False
        return True

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        if self.version is not None and not self.lost:
            try:
                self.storage.delete_version(self.key, self.version)
            except RunnerError as exc:
                log.warning("the lease was not released (it expires): %s", exc.message)
        self.version = None


def _parse(data: bytes) -> Holder | None:
    try:
        return Holder.model_validate_json(data)
    except ValidationError:
        return None


def lease_storage(settings: Settings) -> Storage:
    """The state store when there is one (leases are about state), else the artifacts'."""
    return open_storage(settings.state_url or settings.artifacts_url, settings.aws)


def current_holder(
    settings: Settings, project: str, env: str | None = None, pr: str | None = None
) -> Holder | None:
    """The run that holds an env's lease now (this run's env, by default), if a live
    one does.
    `settings`: the run's (where leases are kept); `project`: its name; `env` and `pr`:
    whose lease (this run's by default)."""
    key = lease_key(project, env or settings.env, pr if env else settings.pr)
    found = lease_storage(settings).get_versioned(key)
    holder = _parse(found[0]) if found else None
    return holder if holder is not None and not holder.expired(_now()) else None


def take_lease(
    settings: Settings, project: str, job: str, storage: Storage | None = None
) -> Lease | Holder:
    """The env's lease for this run, as DBT_RUNNER_CONCURRENCY says: the run that holds
    it instead (skip), or InfraError (fail, or waited too long). `settings`: the run's
    (env, pr, run id, waits); `project`: the dbt project's name; `job`: the job kind
    the holder is shown as; `storage`: where leases are, opened once by the run
    (opened here when None)."""
    key = lease_key(project, settings.env, settings.pr)
    where = storage or lease_storage(settings)
    lease = Lease(where, key, settings.run_id, job, settings.lease_ttl_s)
    deadline = time.monotonic() + settings.concurrency_wait_s
    while True:
        holder = lease.try_acquire()
        if holder is None:
            lease.start_renewing()
            return lease
        if settings.concurrency is Concurrency.SKIP:
            return holder
        busy = busy_message(settings, project, holder)
        if settings.concurrency is Concurrency.FAIL or time.monotonic() > deadline:
            waited = "" if settings.concurrency is Concurrency.FAIL else ", waited too long"
            raise InfraError(
                f"{busy}{waited}: set DBT_RUNNER_CONCURRENCY=wait to wait for it, or skip"
            )
        log.info("%s: waiting for it (DBT_RUNNER_CONCURRENCY=wait)", busy)
        time.sleep(min(POLL_S, settings.lease_ttl_s / 3))


def busy_message(settings: Settings, project: str, holder: Holder) -> str:
    where = f"{project}/{settings.env}" + (f" (pull request {settings.pr})" if settings.pr else "")
    return f"{holder.describe()} holds {where}"
