"""Every key layout, in one place. Under the artifacts URL:

    <project>/<env>/runs/<run_id>/            a run's artifacts and reports
    <project>/<env>/docs/                     the latest docs site, and the latest page
    <project>/<env>/last_run.json             the last run that reached dbt (retry's)
    <project>/<env>/history/date=<day>/<start>_<run_id>.jsonl.gz   node results

under the state URL:

    <project>/<env>/state/latest.json                     the pointer
    <project>/<env>/state/runs/<run_id>/<file>            a promoted run's state
    <project>/_targets/<target digest>.json               what was written into a target

and under the state URL (the artifacts URL without one):

    <project>/<env>/lease.json, lease-pr-<pr>.json        the run that holds the env
"""

from __future__ import annotations

from dbt_runner.storage.urls import join_key


def run_key(project: str, env: str, run_id: str, *name: str) -> str:
    return join_key(project, env, "runs", run_id, *name)


def docs_key(project: str, env: str, *name: str) -> str:
    return join_key(project, env, "docs", *name)


def last_run_key(project: str, env: str) -> str:
    return join_key(project, env, "last_run.json")


def history_key(project: str, env: str, *name: str) -> str:
    return join_key(project, env, "history", *name)


def state_key(project: str, env: str, *name: str) -> str:
    return join_key(project, env, "state", *name)


def lease_key(project: str, env: str, pr: str | None) -> str:
    """One lease per project and env, and per pull request (each its own schemas)."""
    return join_key(project, env, f"lease-pr-{pr}.json" if pr else "lease.json")


def target_log_key(project: str, digest: str) -> str:
    """A target's write log: shared by every env of the project that builds into it."""
    return join_key(project, "_targets", f"{digest}.json")  # no env starts with _
