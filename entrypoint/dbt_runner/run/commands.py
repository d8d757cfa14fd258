"""The dbt command each phase runs, and the plan of every command a run would make.

The selection of node phases is the job kind's (jobs/); what this module adds is the
rest of each command: threads, full refresh, fail fast, the seeds a build leaves to
an earlier seed phase, docs without a second compile, and which phase writes
manifest.json (only the job's last dbt phase: --no-write-json for the others).
"""

from __future__ import annotations

from dbt_runner.config import Phase, Settings
from dbt_runner.engine.invocation import DbtInvocation
from dbt_runner.engine.session import NO_WRITE, PARSE
from dbt_runner.jobs import JobKind, kind_of
from dbt_runner.jobs.base import user_selection
from dbt_runner.jobs.lint import lint_scope
from dbt_runner.state.store import Baseline

# Phases that work on the parsed project (everything but deps and debug).
NEEDS_MANIFEST = {
    Phase.LINT,
    Phase.SEED,
    Phase.SNAPSHOT,
    Phase.RUN,
    Phase.TEST,
    Phase.BUILD,
    Phase.FRESHNESS,
    Phase.DOCS,
}
# Phases whose run_results.json is the job's own (what `dbt retry` reads), last wins.
NODE_PHASES = (Phase.SEED, Phase.SNAPSHOT, Phase.RUN, Phase.TEST, Phase.BUILD)
# The dbt commands that write manifest.json when they finish (docs generate writes it
# only when it compiles, and reads it for its static page).
MANIFEST_WRITERS = (*NODE_PHASES, Phase.FRESHNESS)


def writes_manifest(phase: Phase, phases: list[Phase]) -> bool:
    """Whether `phase` is the job's last dbt phase that writes manifest.json."""
    writers = [p for p in phases if p in MANIFEST_WRITERS]
    return bool(writers) and phase is writers[-1]


def skips_manifest(phase: Phase, phases: list[Phase]) -> bool:
    """Whether `phase` runs with --no-write-json: a writer that is not the last one."""
    return phase in MANIFEST_WRITERS and not writes_manifest(phase, phases)


def phase_command(
    phase: Phase,
    settings: Settings,
    phases: list[Phase],
    compiled: bool = False,
    baseline: Baseline | None = None,
    job: JobKind | None = None,
) -> list[str]:
    """The dbt command (without the shared arguments) a phase runs.

    `compiled`: an earlier phase of this process compiled every node into the shared
    manifest, so docs need not compile the project again. `baseline`: a slim job's
    state (its manifest.json), for node phases to select changes and defer. `job`: the
    job kind, when not the one the settings describe.
    """
    threads = ["--threads", str(settings.threads)] if settings.threads else []
    fail_fast = ["--fail-fast"] if settings.fail_fast else []
    full_refresh = ["--full-refresh"] if settings.full_refresh else []
    select = (job or kind_of(settings)).node_selection(baseline)
    # A seed phase before build has loaded the seeds already: not twice.
    seeded = ["--exclude-resource-type", "seed"] if Phase.SEED in phases else []
    commands = {
        Phase.DEPS: ["deps"],
        Phase.DEBUG: ["debug"],
        # Not a dbt command: SQLFluff's dbt templater on the run's manifest (jobs/lint.py).
        Phase.LINT: ["sqlfluff", "lint", "--templater", "dbt", *lint_scope(baseline)],
        Phase.SEED: ["seed", *select, *threads, *full_refresh, *fail_fast],
        Phase.SNAPSHOT: ["snapshot", *select, *threads, *fail_fast],
        Phase.RUN: ["run", *select, *threads, *full_refresh, *fail_fast],
        Phase.TEST: ["test", *select, *threads, *fail_fast],
        Phase.BUILD: ["build", *select, *seeded, *threads, *full_refresh, *fail_fast],
        Phase.FRESHNESS: ["source", "freshness", *user_selection(settings), *threads],
        # The whole project, whatever the selection: these become the published docs.
        Phase.DOCS: [
            "docs",
            "generate",
            "--static",
            *(["--no-compile"] if compiled else []),
            *threads,
        ],
    }
    return commands[phase]


def plan(
    settings: Settings,
    invocation: DbtInvocation,
    baseline: Baseline | None = None,
    skipped: frozenset[Phase] = frozenset(),
) -> list[tuple[str, list[str]]]:
    """Every dbt command a run would make, in order (parse included); `skipped`: phases
    the run will skip before dbt (deps, with no packages or baked ones)."""
    phases, job = settings.job_phases, kind_of(settings)
    commands: list[tuple[str, list[str]]] = []
    parsed = False
    for phase in (p for p in phases if p not in skipped):
        if phase in NEEDS_MANIFEST and not parsed:
            commands.append((PARSE, ["parse", NO_WRITE, *invocation.common_args()]))
            parsed = True
        # Shown as run will make it when the build succeeds.
        compiled = job.compiles_whole_project()
        command = phase_command(phase, settings, phases, compiled, baseline, job)
        if (
            phase in NEEDS_MANIFEST
            and phase is not Phase.LINT
            and not writes_manifest(phase, phases)
        ):
            command = [*command, NO_WRITE]
        commands.append((phase.value, [*command, *invocation.common_args()]))
    return commands
