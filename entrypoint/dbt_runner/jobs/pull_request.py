"""Pull-request runs (DBT_RUNNER_PR): the job they wrap (slim by default, deferring to
production) in the pull request's own schemas, which a guard proves before any node
runs; a pull request's run never becomes the state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbt_runner.config import BUILDING_PHASES
from dbt_runner.engine.kinds import kind_of, makes_relation
from dbt_runner.errors import ConfigError
from dbt_runner.impact.step import built_models, measure_impact
from dbt_runner.jobs.base import NO_BUILD, Context, Findings, JobKind, Performed, Promotion
from dbt_runner.jobs.step import Step
from dbt_runner.workspace.namespace import Namespace

if TYPE_CHECKING:
    from dbt_runner.engine.invocation import DbtInvocation
    from dbt_runner.state.store import Baseline

log = logging.getLogger(__name__)

IMPACT = "impact"


class PullRequest(JobKind):
    """Another job kind, run in a pull request's namespace."""

    def __init__(self, inner: JobKind) -> None:
        super().__init__(inner.settings)
        self.inner = inner
        self.name = inner.name

    def node_selection(self, baseline: Baseline | None) -> list[str]:
        return self.inner.node_selection(baseline)

    def steps(self, phases: list[Step], invocation: DbtInvocation) -> list[Step]:
        """The job's steps, then what they did to the data against production."""
        steps = self.inner.steps(phases, invocation)
        builds = BUILDING_PHASES & set(self.settings.job_phases)
        if self.settings.pr_impact.enabled and builds:
            impact = Step(
                IMPACT,
                "impact",
                ("compare", "with", "production"),
                advisory=True,
                always=True,
                said_when_skipped=False,
            )
            steps = [*steps, impact]
        return steps

    def before_step(self, step: Step, context: Context) -> None:
        self.inner.before_step(step, context)

    def perform(self, step: Step, context: Context) -> Performed:
        """The impact step, a phase of the report: advisory unless its gate fails."""
        if step.name != IMPACT:
            return self.inner.perform(step, context)
        built = built_models(context.nodes, context.session)
        why = _no_impact(context.baseline, built)
        if why is not None or context.baseline is None:
            return Performed("skipped", f"skipped: {why}", advisory=False)
        try:
            info = measure_impact(
                context.session, self.settings.pr_impact, built, context.baseline.dir
            )
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the impact never fails the run but by its gate
            log.debug("impact failed", exc_info=True)
            return Performed("error", f"{exc}")
        self.found.impact = info
        if info.gate:
            return Performed("failed", info.gate, advisory=False)
        return Performed("success", info.headline())

    def before_nodes(self, context: Context, selected: Callable[[], set[str]]) -> str | None:
        """Every node the job's node phases select writes inside the namespace, or the
        run stops with the first one that would not (exit 3): nothing is built."""
        if context.namespace is None:
            return None
        try:
            manifest = context.session.manifest
            self.found.pr_schemas = check_nodes(manifest, selected(), context.namespace)
        except ConfigError as exc:
            return exc.message
        return None

    def node_command(self, command: list[str], context: Context) -> list[str]:
        return self.inner.node_command(command, context)

    def build_command(self, command: list[str], context: Context) -> list[str]:
        return self.inner.build_command(command, context)

    def findings(self, context: Context) -> Findings:
        found = self.inner.findings(context)
        found.pr_schemas = self.found.pr_schemas
        found.impact = self.found.impact
        return found

    def selects_whole_project(self) -> bool:
        return self.inner.selects_whole_project()

    def compiles_whole_project(self) -> bool:
        return self.inner.compiles_whole_project()

    def promotion(self) -> Promotion:
        inner = self.inner.promotion()
        if not inner.builds:
            return Promotion(NO_BUILD, builds=False)
        return Promotion("a pull-request run: its relations live in the pull request's schemas")


def _no_impact(baseline: Baseline | None, built: list[str]) -> str | None:
    if baseline is None:
        return "no production state to compare with"
    if not built:
        return "the run built no model"
    return None


def check_nodes(manifest: Any, selected: set[str], namespace: Namespace) -> list[str]:
    """The schemas the run will write to; ConfigError naming the first node that would
    write outside the pull request's namespace."""
    schemas = set()
    for unique_id in sorted(selected):
        node = manifest.nodes.get(unique_id)
        if node is None or not _creates_relation(node):
            continue
        if not namespace.holds(node.schema):
            raise ConfigError(
                f"{unique_id} would write to schema '{node.schema}', outside pull request "
                f"{namespace.pr}'s schemas ('{namespace.root}' and '{namespace.root}_*'): the "
                "project's generate_schema_name must build on target.schema for pull requests "
                "(see docs/pull-requests.md); nothing was built"
            )
        schemas.add(node.schema)
    return sorted(schemas)


def _creates_relation(node: Any) -> bool:
    """A relation the build makes: a model, seed or snapshot (not ephemeral), or a
    test's stored failures."""
    if kind_of(node) == "test":
        return bool(getattr(node.config, "store_failures", False))
    return makes_relation(node)
