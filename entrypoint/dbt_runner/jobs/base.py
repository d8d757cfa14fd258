"""What a job is: the one small protocol every job kind answers, asked by the run at
fixed points. The defaults are a full (or custom) job's: it selects what the settings
say, builds it from scratch, and may become the state when it selected everything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbt_runner.config import BUILDING_PHASES, Phase, Settings
from dbt_runner.state.lookup import fetch_state, look_up_state

if TYPE_CHECKING:
    from dbt_runner.engine.invocation import DbtInvocation
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.jobs.step import Step
    from dbt_runner.report.impact import ImpactInfo
    from dbt_runner.report.model import FreshInfo, NodeResult, PhaseStatus, StateInfo
    from dbt_runner.report.parts import ChildDecision, ReachInfo, Target
    from dbt_runner.state.store import Baseline
    from dbt_runner.workspace.namespace import Namespace
    from dbt_runner.workspace.prepare import Workspace


@dataclass
class Context:
    """What the phase sequence hands a job at its fixed points."""

    session: DbtSession
    project: str  # the project's name
    baseline: Baseline | None  # the state it compares with, None without one
    nodes: list[NodeResult]  # the run's node results so far
    namespace: Namespace | None = None  # a pull request's schemas


@dataclass
class Prepared:
    """What a job's preparation found (the state it compares with); the run puts it in
    the report."""

    baseline: Baseline | None = None
    state: StateInfo | None = None
    retry_of: str | None = None  # a retry: the run it completes
    builds_whole_project: bool | None = None  # a retry: that run's
    # A retry of a run that recorded no inputs (an older runner): what this run's
    # promotion records is then not known either.
    inputs_unknown: bool = False
    completes: list[str] = field(default_factory=list)  # a retry: the runs it completes


@dataclass(frozen=True)
class Promotion:
    """Whether a successful run of a job may become the state: the one answer every
    part that decides it reads (the report's builds_whole_project, preflight, the
    ledger)."""

    refused: str | None = None  # why not, even when the run succeeds
    builds: bool = True  # the job has a build or run phase at all

    @property
    def allowed(self) -> bool:
        return self.refused is None


NO_BUILD = "the job has no build or run phase"


@dataclass(frozen=True)
class Performed:
    """What a step that is not a dbt command did (a pull request's impact)."""

    status: PhaseStatus
    message: str | None = None
    advisory: bool = True


@dataclass
class Findings:
    """What a job found while its phases ran; the run puts it in the report."""

    fresh: FreshInfo | None = None
    pr_schemas: list[str] | None = None  # the schemas a pull request's run writes to
    impact: ImpactInfo | None = None  # what a pull request's run does to the data
    reach: ReachInfo | None = None  # how a slim job chose the descendants of its changes
    children: list[ChildDecision] = field(default_factory=list)  # and each decision


class JobKind:
    """A job kind. Hooks, in the order the run asks them:

    - `before_lease`: a check of its own before it takes the env's lease;
    - `prepare`: the state it compares with and defers to (slim and fresh jobs);
    - `has_work`: whether dbt has anything to do;
    - `steps`: the steps the run makes (jobs/steps.py): its phases, as they are, or a
      retry's own, or a pull request's with its impact after them;
    - `node_selection`: the selection of its node phases (seed, snapshot, run, test,
      build), given the state it compares with (`baseline`, None without one);
    - `before_nodes`: after the parse, before the first node phase: None to go on, or
      why not (the run stops, nothing is built); `selected()` lists the nodes the node
      phases select (a `dbt ls`: asked only by a job that needs it);
    - `before_step`: as a step starts (a retry's checks: ConfigError refuses it);
    - `node_command`: each node phase's command as it starts (the descendants a slim
      job's children step chose);
    - `build_command`: the build phase's command, once the phases before it ran;
    - `perform`: a step of its own that is not a dbt command (a pull request's impact);
    - `findings`: what it found, once its steps ran;
    - `selects_whole_project`, `compiles_whole_project`, `promotion`: what its success
      may claim (the ledger decides with them).

    A job kind is policy: it says what the run does, and the run does it (run/).
    """

    name = "full"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.found = Findings()
        if type(self) is JobKind:  # full or custom: the settings say which
            self.name = settings.job.value

    def before_lease(self, project: str) -> None:
        return None

    def prepare(
        self, workspace: Workspace, target: Target | None, dbt_version: str | None
    ) -> Prepared:
        """The last good state of the env this job defers to, fetched where dbt reads
        it when the ledger trusts it; the parse cache restored from it."""
        settings, project = self.settings, workspace.project
        found = look_up_state(
            settings, project.name, target, dbt_version, workspace.inputs, project.source_dir
        )
        baseline, info = fetch_state(
            settings, found, project.dir, workspace.target_path, dbt_version
        )
        return Prepared(baseline, info)

    def has_work(self) -> bool:
        return True

    def steps(self, phases: list[Step], invocation: DbtInvocation) -> list[Step]:
        """The steps a run of this job makes, from its phases' (`phases`) and the shared
        arguments (`invocation`)."""
        return phases

    def before_step(self, step: Step, context: Context) -> None:
        return None

    def perform(self, step: Step, context: Context) -> Performed:
        raise NotImplementedError(f"{self.name} jobs have no step '{step.name}'")

    def clean_up(self) -> None:
        return None

    def node_selection(self, baseline: Baseline | None) -> list[str]:
        return user_selection(self.settings)

    def before_nodes(self, context: Context, selected: Callable[[], set[str]]) -> str | None:
        return None

    def node_command(self, command: list[str], context: Context) -> list[str]:
        """A node phase's command as it starts (a slim job's chosen descendants)."""
        return command

    def build_command(self, command: list[str], context: Context) -> list[str]:
        return command

    def findings(self, context: Context) -> Findings:
        return self.found

    def _state_selection(self, baseline: Baseline, changed: list[str]) -> list[str]:
        return state_selection(self.settings, baseline, changed)

    def selects_whole_project(self) -> bool:
        """Nothing narrowed by a selector, an exclusion or a selection."""
        s = self.settings
        return not (s.selector or s.exclude or s.select)

    def compiles_whole_project(self) -> bool:
        """Whether a successful build compiles every node into the manifest (then docs
        need not compile the project again)."""
        return Phase.BUILD in self.settings.job_phases and self.selects_whole_project()

    def promotion(self) -> Promotion:
        """Whether a successful run of this job may become the state: the state claims
        the warehouse holds every node's code as built."""
        s = self.settings
        if not BUILDING_PHASES & set(s.job_phases):
            return Promotion(NO_BUILD, builds=False)
        if s.selector or s.exclude:
            return Promotion("the job built a selection (DBT_RUNNER_SELECTOR / DBT_RUNNER_EXCLUDE)")
        return Promotion(self.narrowed())

    def narrowed(self) -> str | None:
        """How the job's own selection leaves out part of what its kind builds, if it does."""
        if not self.selects_whole_project():
            return "the job built a selection (DBT_RUNNER_SELECT)"
        return None


def user_selection(settings: Settings) -> list[str]:
    """The selection the settings give: a selector, or select and exclude."""
    args = []
    if settings.selector:
        args += ["--selector", settings.selector]
    if settings.select:
        args += ["--select", *settings.select.split()]
    if settings.exclude:
        args += ["--exclude", *settings.exclude.split()]
    return args


def state_selection(settings: Settings, baseline: Baseline, changed: list[str]) -> list[str]:
    """What changed since the state (plus any extra selection, and what runs since the
    state rebuilt without promoting it), deferring unselected refs to the state's
    relations."""
    select = changed + (settings.select or "").split() + baseline.besides()
    args: list[Any] = ["--select", *select]
    if settings.exclude:
        args += ["--exclude", *settings.exclude.split()]
    return [*args, *state_args(settings, baseline)]


def state_args(settings: Settings, baseline: Baseline) -> list[str]:
    """The state a build compares with, and whether it defers to it."""
    args = ["--state", str(baseline.dir)]
    if settings.slim.defer:
        args.append("--defer")
    if settings.slim.favor_state:
        args.append("--favor-state")
    return args
