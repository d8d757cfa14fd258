"""The vocabulary of settings: jobs, phases, adapters and the other enumerations."""

from __future__ import annotations

from enum import StrEnum


class Job(StrEnum):
    FULL = "full"
    SLIM = "slim"
    FRESH = "fresh"
    CUSTOM = "custom"


# Jobs that build what changed since the state, deferring the rest to it.
STATE_JOBS = {Job.SLIM, Job.FRESH}


class Phase(StrEnum):
    """dbt phases, declared in the order a job runs them."""

    DEPS = "deps"
    DEBUG = "debug"
    LINT = "lint"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    RUN = "run"
    TEST = "test"
    BUILD = "build"
    FRESHNESS = "freshness"
    DOCS = "docs"


PHASE_ORDER = list(Phase)
# Phases that run nodes; their run_results.json is the job's own (what `dbt retry`
# reads), last wins.
NODE_PHASES = (Phase.SEED, Phase.SNAPSHOT, Phase.RUN, Phase.TEST, Phase.BUILD)

JOB_PHASES: dict[Job, list[Phase]] = {
    Job.FULL: [Phase.DEPS, Phase.DEBUG, Phase.SEED, Phase.BUILD, Phase.FRESHNESS, Phase.DOCS],
    # As dbt Cloud's CI jobs: no debug (build fails just as clearly), build only.
    Job.SLIM: [Phase.DEPS, Phase.BUILD],
    # Freshness first: the build selects what has new data (source_status:fresher+).
    Job.FRESH: [Phase.DEPS, Phase.FRESHNESS, Phase.BUILD],
}
# Phases that build relations in the warehouse: a job without one never sets state.
BUILDING_PHASES = {Phase.BUILD, Phase.RUN}
# Phases that write to the warehouse at all.
WRITING_PHASES = {Phase.SEED, Phase.SNAPSHOT, *BUILDING_PHASES}


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Adapter(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    REDSHIFT = "redshift"
    BIGQUERY = "bigquery"


class MetricsMode(StrEnum):
    AUTO = "auto"  # EMF when the log is JSON lines (CloudWatch), else none
    EMF = "emf"
    OFF = "off"


class Concurrency(StrEnum):
    """What a run does when another run of its env holds the lease."""

    SKIP = "skip"  # end at once: status skipped, exit 0
    WAIT = "wait"  # wait for it, at most DBT_RUNNER_CONCURRENCY_WAIT_S
    FAIL = "fail"  # exit 4


class ProfileSource(StrEnum):
    """Which profiles.yml a run uses."""

    AUTO = "auto"  # DBT_RUNNER_PROFILES_DIR, DBT_PROFILES_DIR, the project's, else rendered
    RENDERED = "rendered"  # always rendered from DBT_RUNNER_WAREHOUSE__*
    EXISTING = "existing"  # never rendered: a missing profiles.yml is an error


class Policy(StrEnum):
    """When a channel is notified."""

    ALWAYS = "always"
    FAILURE = "failure"
    SUCCESS = "success"
    NEVER = "never"
