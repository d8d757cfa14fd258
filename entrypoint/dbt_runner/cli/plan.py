"""`dbt-runner plan`: every dbt command `run` would make, and what it would find before
dbt starts (the target, the state, a last run that did not finish); runs nothing. It
asks the same state lookup and ledger as `run`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from dbt_runner.cli.args import settings_from

if TYPE_CHECKING:
    from dbt_runner.cli.plan_parsed import Decided, Parsed
    from dbt_runner.config import Settings
    from dbt_runner.jobs.step import Step
    from dbt_runner.report.parts import Target
    from dbt_runner.state.lookup import FoundState
    from dbt_runner.workspace.baked import Baked


def plan_verb(args: argparse.Namespace) -> int:
    from dbt_runner.cli.plan_parsed import parsed_plan, step_json
    from dbt_runner.config import Phase
    from dbt_runner.jobs import kind_of
    from dbt_runner.jobs.retry import Retry
    from dbt_runner.jobs.steps import steps_for
    from dbt_runner.state.lookup import look_up_state
    from dbt_runner.versions import dbt_version
    from dbt_runner.workspace.prepare import describe_workspace

    settings = settings_from(args)
    workspace = describe_workspace(settings)
    name = workspace.project.name
    target = workspace.identify_target()
    source_dir = workspace.project.source_dir
    found = look_up_state(settings, name, target, dbt_version(), workspace.inputs, source_dir)
    baseline = None
    if found is not None and found.usable:
        baseline = found.baseline(settings.run_dir / "state")
    deps_not_needed = workspace.deps_not_needed()
    no_deps = frozenset({Phase.DEPS}) if deps_not_needed else frozenset()
    job = Retry(settings, args.retry_of) if args.retry else kind_of(settings)
    steps = steps_for(settings, job, workspace.invocation(), baseline, no_deps)
    parsed = None
    if args.nodes or (found is not None and any(step.kind == "children" for step in steps)):
        parsed = parsed_plan(settings, job, found, steps, nodes=args.nodes)
        steps = parsed.steps
    if args.as_json:
        print(json.dumps([step_json(s, parsed) for s in steps], indent=2))
        return 0
    print(f"# project {name}, env {settings.env}, job {settings.job.value}, run {settings.run_id}")
    if workspace.project.dir != workspace.project.source_dir:
        print(f"# the project folder is read-only: dbt runs a copy in {workspace.project.dir}")
    deps = [f"deps: skipped, {deps_not_needed}"] if deps_not_needed else []
    for note in [*notes(settings, name, target, found), *baked_notes(workspace.baked), *deps]:
        print(f"# {note}")
    for step in steps:
        print(f"{step.name:<10} {said_step(step)}")
        for line in parsed_lines(step, parsed):
            print(f"{'':<10} {line}")
    return 0


def parsed_lines(step: Step, parsed: Parsed | None) -> list[str]:
    """What plan found of a step with the project parsed, as it prints it."""
    if step.kind == "children":
        return children_lines(parsed.children if parsed else None)
    if parsed is None or step.name not in parsed.nodes:
        return []
    nodes = parsed.nodes[step.name]
    if isinstance(nodes, str):
        return [f"nodes: {nodes}"]
    return [f"{len(nodes)} node(s):", *(f"  {node}" for node in nodes)]


def children_lines(children: Decided | None) -> list[str]:
    """The children step's decisions as plan prints them: one line per descendant."""
    if isinstance(children, str) or children is None:
        return [f"decided at run time: {children or 'no state yet'}"]
    info, decisions = children
    if info.mode == "all":
        return [f"every descendant of the changes: {info.reason}"]
    head = f"{info.built} of {info.built + info.skipped} descendant(s) to build ({info.seconds} s)"
    return [head] + [f"{d.decision:<5} {d.node}: {d.reason}" for d in decisions]


def said_step(step: Step) -> str:
    """A step as plan prints it: a dbt command as typed, lint and impact in words."""
    if step.kind in ("dbt", "parse"):
        return "dbt " + " ".join(step.argv)
    if step.kind == "lint":
        return " ".join(step.argv)
    if step.kind == "children":
        return "which descendants of the changes a change can reach (DBT_RUNNER_SLIM__CHILDREN)"
    return "the models built, against production's (after the build)"


def notes(
    settings: Settings, project: str, target: Target | None, found: FoundState | None
) -> list[str]:
    """What `run` would find before dbt starts: the target, the state, the last run.
    `settings`: the run's; `project`: its name; `target`: the target it builds into;
    `found`: the state it would find."""
    from dbt_runner.config import STATE_JOBS
    from dbt_runner.outputs.publish import RUNNING, read_last_run
    from dbt_runner.state import ledger
    from dbt_runner.storage import open_storage

    said = [f"target: {target.describe() if target else 'known at run time'}"]
    vanishing = ledger.vanishing(target, settings)
    said += [f"warning: {vanishing}"] if vanishing else []
    if found is not None and found.usable and found.pointer is not None:
        run_id, url = found.pointer.run_id, found.store.url()
        said.append(f"{settings.job.value}: changes since run {run_id} ({url}), deferring to it")
    elif found is not None and settings.job in STATE_JOBS:
        said.append(found.why_not(settings.job))
    last = read_last_run(open_storage(settings.artifacts_url, settings.aws), project, settings.env)
    if last is not None and last["status"] == RUNNING:
        said.append(
            f"the last run, {last['run_id']}, did not finish (killed, or still running): "
            "retry would refuse it"
        )
    return said


def baked_notes(baked: Baked | None) -> list[str]:
    """Whether run would start from what `dbt-runner prepare` baked, and why not."""
    if baked is None:
        return []
    if baked.problem is not None:
        parse = f"baked parse: not used ({baked.problem}); dbt parses without it"
    else:
        when = baked.record.prepared_at.isoformat() if baked.record else "?"
        parse = f"baked parse: used (prepared {when}, {baked.folder})"
    return [parse]
