"""What `plan` finds only with the project parsed and the state fetched, as `run` has
them (nothing built): the descendants a slim job's children step chooses, and, with
`--nodes`, the nodes each node step selects (and their Dagster asset keys, so that an
orchestrator can ask for exactly the assets a job will build)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbt_runner.config import Settings
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.jobs.base import Context, JobKind
    from dbt_runner.jobs.step import Step
    from dbt_runner.report.parts import ChildDecision, ReachInfo
    from dbt_runner.state.lookup import FoundState
    from dbt_runner.workspace.prepare import Workspace

    # What plan found of the children step: its decisions, or why it could not decide.
    Decided = tuple[ReachInfo, list[ChildDecision]] | str

# Jobs whose build selection is made during the run, and when.
DECIDED_IN_THE_RUN = {"fresh": "after the sources' freshness", "retry": "by dbt retry"}


@dataclass
class Parsed:
    """The steps with the children step's choice in their commands, what it decided,
    and each node step's nodes (by its name: their unique ids, or why not known yet)."""

    steps: list[Step]
    children: Decided | None = None
    nodes: dict[str, list[str] | str] = field(default_factory=dict)
    assets: dict[str, list[str]] = field(default_factory=dict)  # Dagster's keys, by step


def parsed_plan(
    settings: Settings, job: JobKind, found: FoundState | None, steps: list[Step], nodes: bool
) -> Parsed:
    """The plan, decided as `run` decides it: the workspace opened, the state fetched,
    the project parsed, the warehouse's columns read for a children step; nothing
    built. `settings`, `job`: the run's; `found`: the state it compares with (None:
    none); `steps`: its steps; `nodes`: whether to list each node step's nodes."""
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.jobs.base import Context
    from dbt_runner.state.lookup import fetch_state
    from dbt_runner.versions import dbt_version
    from dbt_runner.workspace.prepare import dbt_environment, open_workspace

    workspace = open_workspace(settings)
    project = workspace.project
    target_path, version = workspace.target_path, dbt_version()
    baseline, _ = fetch_state(settings, found, project.dir, target_path, version)
    session = DbtSession(workspace.invocation(), target_path, workspace.profile.adapter)
    quiet = {"DBT_LOG_LEVEL": "none"}  # plan's output is its own (--json: JSON alone)
    with workspace.dbt_context(), dbt_environment(quiet):
        why = _installed(session, workspace)
        if why is None and session.parse().status != "success":
            why = "the project does not parse here"
        if why is not None:
            return Parsed(steps, why, {s.name: why for s in steps if s.node_phase} if nodes else {})
        context = Context(session, project.name, baseline, [], workspace.profile.namespace)
        parsed = Parsed(steps)
        if found is not None and any(step.kind == "children" for step in steps):
            parsed = _children_decided(job, context, steps)
        if nodes:
            _list_nodes(parsed, job, session)
    return parsed


def _installed(session: DbtSession, workspace: Workspace) -> str | None:
    """The project's packages installed as the run's deps step installs them (a fresh
    container has none), or why not."""
    from dbt_runner.workspace.packages import remember_install

    if workspace.deps_not_needed() is not None:
        return None
    if not session.invoke(["deps", *session.common()]).success:
        return "dbt deps failed here (the run would stop there too)"
    remember_install(workspace.project.dir)
    return None


def _children_decided(job: JobKind, context: Context, steps: list[Step]) -> Parsed:
    """The children step performed, and the node commands with its choice."""
    step = next(s for s in steps if s.kind == "children")
    job.perform(step, context)
    steps = [
        replace(s, command=tuple(job.node_command(list(s.command), context))) if s.node_phase else s
        for s in steps
    ]
    found_now = job.findings(context)
    if found_now.reach is None:
        return Parsed(steps, "the children step did not decide")
    return Parsed(steps, (found_now.reach, found_now.children))


def _list_nodes(parsed: Parsed, job: JobKind, session: DbtSession) -> None:
    """Each node step's nodes, as `dbt ls` selects them on the parsed project."""
    from dbt_runner.outputs.dagster_keys import asset_keys_of

    for step in parsed.steps:
        if not step.node_phase:
            continue
        later = DECIDED_IN_THE_RUN.get(job.name)
        selected = None if later else session.selected(list(step.command))
        if selected is None:
            parsed.nodes[step.name] = f"decided in the run, {later or 'by dbt'}"
            continue
        parsed.nodes[step.name] = sorted(selected)
        parsed.assets[step.name] = asset_keys_of(session.manifest, selected)


def step_json(step: Step, parsed: Parsed | None) -> dict[str, Any]:
    """A step as `plan --json` prints it."""
    said: dict[str, Any] = {"phase": step.name, "kind": step.kind, "args": step.argv}
    children = parsed.children if parsed else None
    if step.kind == "children":
        if isinstance(children, str) or children is None:
            said["decided"] = children or "at run time"
        else:
            said["reach"] = children[0].model_dump(mode="json")
            said["decisions"] = [d.model_dump(mode="json") for d in children[1]]
    if parsed is not None and step.name in parsed.nodes:
        said["nodes"] = parsed.nodes[step.name]
        if step.name in parsed.assets:
            said["assets"] = parsed.assets[step.name]
    return said
