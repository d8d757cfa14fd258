"""The ledger: the rules that keep state true.

State is a record of what one target's warehouse holds, written only from evidence. A
slim, fresh or retried job trusts it: it builds only what changed since, and reads
everything else from the relations the state names. So every decision about state is
made here, and nowhere else:

- what a run may trust (`distrust`): a state made for this project, adapter and
  target, with the vars and environment variables its parse read, with a manifest
  this dbt reads, and (for a fresh job) the freshness it needs; and nothing written
  into its target since that it cannot account for (`written_since`);
- when the pointer moves (`promotion_blocker`): the run's report shows that every
  node its job selected was built, into a target that outlives the run, that holds
  everything the state will name;
- what a retry may complete (`retry_blocker`, `changed_since`, `written_after`): a run
  that finished, for the same target, whose code has not changed under the nodes it
  already built, and into whose target nothing else has written since.

Each function returns why not, in words for the log and the report, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbt_runner.config import WRITING_PHASES, Job, Settings
from dbt_runner.engine.kinds import NODE_COMMANDS
from dbt_runner.report.parts import Inputs, Target
from dbt_runner.workspace.inputs import changed_inputs
from dbt_runner.workspace.target import vanishes

if TYPE_CHECKING:
    from dbt_runner.report.model import RunReport
    from dbt_runner.report.parts import Horizon
    from dbt_runner.state.store import StatePointer
    from dbt_runner.state.writes import WriteLog

SUPPORTED_MANIFEST = "https://schemas.getdbt.com/dbt/manifest/v12.json"
# dbt retry re-runs the nodes whose result has one of these statuses.
RETRIED_STATUSES = {"error", "fail", "skipped", "runtime error", "partial success"}


# --- what a later run may trust -----------------------------------------------------


def distrust(
    pointer: StatePointer,
    metadata: dict[str, Any],
    *,
    project: str,
    target: Target | None,
    own_env: bool,
    job: Job,
    dbt_version: str | None,
    inputs_now: Callable[[list[str]], Inputs],
    writes: WriteLog | None = None,
) -> str | None:
    """Why this run must not compare with, or defer to, the state `pointer` names.
    `own_env`: the state is this env's own (not production's, deferred to by CI), so
    it must describe this run's very target, built with this run's inputs
    (`inputs_now`: this run's, for the variables named). `writes`: the target's write
    log (what the state does not cover is built again, when it can be said what).
    `pointer` and `metadata`: the state's pointer and its manifest's metadata; `project`:
    this run's; `target`: this run's target; `job`: its kind; `dbt_version`: its dbt's."""
    return (
        _foreign(metadata, project, target)
        or (_not_this_target(pointer, target, writes) if own_env else None)
        or (_other_inputs(pointer, inputs_now) if own_env else None)
        or (_not_for_fresh(pointer, dbt_version) if job is Job.FRESH else None)
    )


def _foreign(metadata: dict[str, Any], project: str, target: Target | None) -> str | None:
    """Another project's state, a manifest this dbt does not read, another adapter."""
    if metadata.get("project_name") != project:
        return f"the state is project '{metadata.get('project_name')}'s"
    if metadata.get("dbt_schema_version") != SUPPORTED_MANIFEST:
        return f"the state's manifest is {metadata.get('dbt_schema_version')}"
    if target is None:
        return "this run's target could not be identified from its profile"
    built_on = metadata.get("adapter_type")
    if built_on not in (None, target.adapter):
        return f"the state was built on {built_on}, not {target.adapter}"
    return None


def _not_this_target(
    pointer: StatePointer, target: Target | None, writes: WriteLog | None
) -> str | None:
    """An env's own state must describe this very target, and everything written into
    it since must be known."""
    if pointer.target is None:
        return (
            "the state records no target (written before dbt-runner 0.2.0): it cannot "
            "say which warehouse holds its relations"
        )
    if target is not None and pointer.target != target:
        changed = ", ".join(target.differences(pointer.target))
        return f"the state was made for another target ({changed})"
    if pointer.horizon is None:
        return (
            "the state does not record which writes into its target it covers (written "
            "before its target's write log)"
        )
    return written_since(pointer.horizon, writes)


def written_since(horizon: Horizon, writes: WriteLog | None) -> str | None:
    """Why what was written into the target since a state with `horizon` cannot be
    accounted for (built again), if it cannot: a write that never said what it wrote,
    or one that may have rewritten everything."""
    if writes is None:
        return None
    if not writes.reaches_back_to(horizon.seq):
        return "its target's write log no longer reaches back to it (too many writes since)"
    later = writes.after(horizon)
    for write in later:
        if write.open:
            return (
                f"{write.describe()} began writing into its target and has not said what it "
                "wrote (killed, or still running)"
            )
    for write in later:
        if write.whole:
            return f"{write.describe()} rewrote its target since ({write.why_whole})"
    return None


def _other_inputs(pointer: StatePointer, inputs_now: Callable[[list[str]], Inputs]) -> str | None:
    """dbt's state:modified does not see a var or an environment variable a model reads:
    when one differs, the state's relations may hold what the code computed before."""
    if pointer.inputs is None:
        return (
            "the state records no vars or environment variables (written before "
            "dbt-runner 0.2.0): it cannot say what its relations were built with"
        )
    changed = changed_inputs(pointer.inputs, inputs_now(list(pointer.inputs.env_vars)))
    if changed is None:
        return None
    return (
        f"{changed} differ from the state's run, and dbt's state:modified cannot see "
        "which models read them"
    )


def _not_for_fresh(pointer: StatePointer, dbt_version: str | None) -> str | None:
    """A fresh job compares freshness taken with the same dbt, before a build."""
    if pointer.dbt_version != dbt_version:
        return f"dbt changed since it ({pointer.dbt_version} -> {dbt_version})"
    if not pointer.sources:
        return "it keeps no sources.json (taken by a fresh job before its build)"
    return None


# --- when the pointer moves -----------------------------------------------------------


def vanishing(target: Target | None, settings: Settings) -> str | None:
    """A warning for a job that builds into a database that will not outlive it: no
    state will be kept for it, and whatever it builds is lost with the container."""
    gone = vanishes(target, settings.work_dir) if target is not None else None
    if gone is None or not WRITING_PHASES & set(settings.job_phases):
        return None
    return f"{gone}; no state is kept for it"


def unbuilt(report: RunReport) -> str | None:
    """Why the report does not show that the run built everything its job selected,
    if it does not."""
    return _not_everything(report) or _phases_incomplete(report) or _nodes_missing(report)


def _not_everything(report: RunReport) -> str | None:
    if report.skipped:
        return "the run was skipped: another run held its env"
    if not report.builds_whole_project:
        return "the job built a selection, not the whole project"
    if not report.succeeding():
        return "the run did not succeed"
    return None


def _phases_incomplete(report: RunReport) -> str | None:
    ran = [phase for phase in report.phases if phase.name in NODE_COMMANDS]
    built = ("build", "run", "retry")
    if not any(phase.status == "success" and phase.name in built for phase in ran):
        return "no build, run or retry phase succeeded"
    for phase in ran:
        if phase.status not in ("success", "skipped") or not phase.results_complete:
            return f"its {phase.name} phase ended {phase.status}"
    return None


def _nodes_missing(report: RunReport) -> str | None:
    missing = [
        n.unique_id
        for n in report.nodes
        if n.phase in NODE_COMMANDS and n.outcome in ("failed", "skipped")
    ]
    if missing:
        return f"{len(missing)} selected node(s) did not build (first: {missing[0]})"
    return None


def promotion_blocker(
    settings: Settings, report: RunReport, policy: str | None, lease_lost: bool = False
) -> str | None:
    """Why this run's state must not become the one later jobs trust, if it must not.
    `policy`: the job kind's own reason (jobs/), `lease_lost`: another run took the
    env's lease over while this one ran.
    `settings`: the run's; `report`: the run's, as it stands."""
    if lease_lost:
        return "another run took this env's lease over while this one ran"
    # The job's own reason reads best; the report's evidence decides in any case.
    policy = policy if not report.builds_whole_project else None
    blocker = policy or unbuilt(report)
    if blocker is not None:
        return blocker
    if report.target is None:
        return "the run's target could not be identified from its profile"
    gone = vanishes(report.target, settings.work_dir)
    if gone is not None:
        return gone
    state = report.state
    if state is not None and state.mode == "slim" and settings.defer_env != settings.env:
        return (
            f"the job deferred to {settings.defer_env}'s state: this target does not hold "
            "the relations it read from there"
        )
    return None


# --- what a retry may complete ------------------------------------------------------


def retry_blocker(previous: RunReport, target: Target | None) -> str | None:
    """Why `previous` cannot be completed by a retry against `target`, if it cannot
    (a run that succeeded has nothing to complete: not a blocker)."""
    again = f"run the job again (dbt-runner run) instead; run {previous.run_id}"
    if previous.target is None:
        return f"{again} records no target, so a retry cannot know where its relations are"
    if target is None:
        return f"{again}: this retry's target could not be identified from its profile"
    if previous.target != target:
        changed = ", ".join(target.differences(previous.target))
        return f"{again} built into another target than this retry's ({changed})"
    return None


def retried_nodes(run_results: dict[str, Any]) -> set[str]:
    """The nodes dbt retry re-runs from `run_results` (run_results.json's contents)."""
    return {
        result["unique_id"]
        for result in run_results.get("results", [])
        if result.get("status") in RETRIED_STATUSES
    }


def changed_since(run_id: str, modified: set[str], retried: set[str]) -> str | None:
    """Why the project's code no longer matches what run `run_id` built, if it does not:
    a node (or a parent's code under it) changed since that run, and the retry would
    not build it again. `modified`: dbt's state:modified+ against that run's manifest."""
    stale = sorted(modified - retried)
    if not stale:
        return None
    shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    return (
        f"the project changed since run {run_id} built {shown}; a retry would leave the old "
        "code in the warehouse while the state says the new: run the job again "
        "(dbt-runner run)"
    )


def written_after(previous: RunReport, writes: WriteLog | None) -> str | None:
    """Why a retry must not complete `previous`: another run wrote into its target
    since (the retry would promote that run's state over what the other built)."""
    if writes is None:
        return None
    own = writes.find(previous.run_id)
    chain = {previous.run_id, *(own.completes if own is not None else [])}
    if own is not None:
        later = [write for write in writes.writes if write.seq > own.seq]
    else:  # older than the log: anything that started after it
        later = [write for write in writes.writes if write.started_at > previous.started_at]
    for write in later:
        if not write.chain() & chain:
            return (
                f"{write.describe()} wrote into this target after run {previous.run_id}: "
                f"completing {previous.run_id} now would promote its state over what that run "
                "built; run the job again (dbt-runner run)"
            )
    return None


def other_values(run_id: str, built_with: Inputs, now: Inputs) -> str | None:
    """Why this retry's vars or environment variables would not complete run `run_id`:
    dbt retry renders what it runs again with this run's, so a difference leaves
    relations built with both, and a state naming only the new."""
    changed = changed_inputs(built_with, now)
    if changed is None:
        return None
    return (
        f"run {run_id} was built with other values of {changed} than this retry's: set "
        "them back to retry it, or run the job again (dbt-runner run)"
    )
