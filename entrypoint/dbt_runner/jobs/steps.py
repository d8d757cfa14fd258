"""The steps of a run: one ordered list, made by one function, that `run` executes and
`plan` prints.

Each step is one thing the run does in order: a dbt command (its own arguments and the
shared ones), the parse, the lint phase, a pull request's impact. The list comes from
the settings (the job's phases), the job kind (its selection; a retry's own steps, a
pull request's impact after its build) and the state a slim or fresh job compares
with. What only the run can know adjusts a step as it starts, and `plan` says so: a
fresh job's build adds the sources dbt cannot judge (jobs/fresh.py), and docs compile
the project after all when the build before them did not succeed.

The rest of each dbt command is here too: threads, full refresh, fail fast, the seeds a
build leaves to an earlier seed phase, docs without a second compile, and which phase
writes manifest.json (the job's last phase that writes it: --no-write-json for the
others).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt_runner.config import Phase, Settings
from dbt_runner.config.kinds import NODE_PHASES
from dbt_runner.engine.session import NO_WRITE, PARSE
from dbt_runner.jobs.step import Step

if TYPE_CHECKING:
    from dbt_runner.engine.invocation import DbtInvocation
    from dbt_runner.jobs.base import JobKind
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
# The dbt commands that write manifest.json when they finish (docs generate writes it
# only when it compiles, and reads it for its static page).
MANIFEST_WRITERS = (*NODE_PHASES, Phase.FRESHNESS)
NO_COMPILE = "--no-compile"


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

    `settings` and `phases`: the job's; `compiled`: an earlier phase compiles every node
    into the shared manifest, so docs need not compile the project again; `baseline`: a
    slim job's state (its manifest.json), for node phases to select changes and defer;
    `job`: the job kind, when not the one the settings describe.
    `phase`: which."""
    from dbt_runner.jobs import kind_of
    from dbt_runner.jobs.base import user_selection
    from dbt_runner.jobs.lint import lint_scope

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
        Phase.DOCS: ["docs", "generate", "--static", *([NO_COMPILE] if compiled else []), *threads],
    }
    return commands[phase]


def steps_for(
    settings: Settings,
    job: JobKind,
    invocation: DbtInvocation,
    baseline: Baseline | None = None,
    skipped: frozenset[Phase] = frozenset(),
) -> list[Step]:
    """Every step a run of `job` makes, in order.

    `settings`: the run's; `job`: its kind (which may replace or add steps);
    `invocation`: the arguments every dbt command shares; `baseline`: the state a slim
    or fresh job compares with (None: none); `skipped`: phases the run will skip before
    dbt (deps, with no packages or baked ones), left out.
    """
    return job.steps(phase_steps(settings, job, invocation, baseline, skipped), invocation)


def phase_steps(
    settings: Settings,
    job: JobKind,
    invocation: DbtInvocation,
    baseline: Baseline | None,
    skipped: frozenset[Phase],
) -> list[Step]:
    """The job's phases as steps, the parse before the first that needs it (arguments
    as `steps_for`'s).
    `settings`, `job`, `invocation`, `baseline` and `skipped`: as `steps_for`'s."""
    phases, common = settings.job_phases, tuple(invocation.common_args())
    compiled = job.compiles_whole_project()  # as run makes docs when the build succeeds
    steps: list[Step] = []
    for phase in (p for p in phases if p not in skipped):
        if phase in NEEDS_MANIFEST and not any(step.kind == "parse" for step in steps):
            steps.append(Step(PARSE, "parse", ("parse", NO_WRITE), common, said_when_skipped=False))
        command = phase_command(phase, settings, phases, compiled, baseline, job)
        if skips_manifest(phase, phases):
            command = [*command, NO_WRITE]
        lint = phase is Phase.LINT
        steps.append(
            Step(
                phase.value,
                "lint" if lint else "dbt",
                tuple(command),
                () if lint else common,
                phase=phase,
                advisory=phase in settings.advisory_phases,
                node_phase=phase in NODE_PHASES,
                has_nodes=phase in NODE_PHASES or phase is Phase.FRESHNESS,
            )
        )
    return steps


def plan(
    settings: Settings,
    invocation: DbtInvocation,
    baseline: Baseline | None = None,
    skipped: frozenset[Phase] = frozenset(),
) -> list[tuple[str, list[str]]]:
    """Each step the job the settings describe makes, as (name, argv); the arguments
    are `steps_for`'s.
    `settings`, `invocation`, `baseline` and `skipped`: as `steps_for`'s."""
    from dbt_runner.jobs import kind_of

    steps = steps_for(settings, kind_of(settings), invocation, baseline, skipped)
    return [(step.name, step.argv) for step in steps]
