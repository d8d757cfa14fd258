"""Job kinds, one module each behind one small protocol (base.py): full and custom
(base.py), slim, fresh, pull requests (which wrap another kind), lint (the lint phase
and the lint verb's preset), retry (the retry verb's path) and cleanup."""

from __future__ import annotations

from dbt_runner.config import Job, Settings
from dbt_runner.jobs.base import Context, Findings, JobKind
from dbt_runner.jobs.fresh import Fresh
from dbt_runner.jobs.pull_request import PullRequest
from dbt_runner.jobs.slim import Slim

KINDS: dict[Job, type[JobKind]] = {Job.SLIM: Slim, Job.FRESH: Fresh}


def kind_of(settings: Settings) -> JobKind:
    """The job the settings describe; a pull request's wraps it."""
    kind = KINDS.get(settings.job, JobKind)(settings)
    return PullRequest(kind) if settings.pr else kind


__all__ = ["Context", "Findings", "JobKind", "kind_of"]
