"""Pull-request runs (DBT_RUNNER_PR): the job they wrap (slim by default, deferring to
production) in the pull request's own schemas, which a guard proves before any node
runs; a pull request's run never becomes the state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbt_runner.config import BUILDING_PHASES
from dbt_runner.engine.session import Clock
from dbt_runner.errors import ConfigError
from dbt_runner.impact.step import built_models, measure_impact
from dbt_runner.jobs.base import Context, Findings, JobKind
from dbt_runner.report.impact import ImpactInfo
from dbt_runner.report.parts import PhaseStatus
from dbt_runner.workspace.namespace import Namespace

if TYPE_CHECKING:
    from dbt_runner.run.sequence import PhaseSequence
    from dbt_runner.state.store import Baseline

log = logging.getLogger(__name__)

IMPACT = "impact"

# Nodes whose build creates a relation.
BUILT_TYPES = {"model", "seed", "snapshot"}


class PullRequest(JobKind):
    """Another job kind, run in a pull request's namespace."""

    def __init__(self, inner: JobKind) -> None:
        super().__init__(inner.settings)
        self.inner = inner
        self.name = inner.name

    def node_selection(self, baseline: Baseline | None) -> list[str]:
        return self.inner.node_selection(baseline)

    def execute(self, sequence: PhaseSequence) -> None:
        """The job's phases, then what they did to the data against production."""
        self.inner.execute(sequence)
        builds = BUILDING_PHASES & set(self.settings.job_phases)
        if self.settings.pr_impact.enabled and builds:
            self.found.impact = self._impact(sequence)

    def _impact(self, sequence: PhaseSequence) -> ImpactInfo | None:
        """The impact step, a phase of the report: advisory unless its gate fails."""
        recorder, baseline = sequence.recorder, sequence.baseline
        built = built_models(recorder.nodes, sequence.session)
        why = _no_impact(baseline, built)
        if why is not None or baseline is None:
            recorder.skipped(IMPACT, f"skipped: {why}")
            return None
        clock = Clock()
        try:
            info = measure_impact(sequence.session, self.settings.pr_impact, built, baseline.dir)
        except KeyboardInterrupt:
            recorder.record(IMPACT, "interrupted", clock, advisory=True)
            raise
        except Exception as exc:  # the impact never fails the run but by its gate
            log.debug("impact failed", exc_info=True)
            recorder.record(IMPACT, "error", clock, message=f"{exc}", advisory=True)
            return None
        status: PhaseStatus = "failed" if info.gate else "success"
        message = info.gate or info.headline()
        recorder.record(IMPACT, status, clock, message=message, advisory=info.gate is None)
        return info

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

    def not_promotable(self) -> str | None:
        reason = self.inner.not_promotable()
        if reason == "the job has no build or run phase":
            return reason
        return "a pull-request run: its relations live in the pull request's schemas"


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
    kind = str(getattr(node.resource_type, "value", node.resource_type))
    config = node.config
    if kind == "test":
        return bool(getattr(config, "store_failures", False))
    return kind in BUILT_TYPES and getattr(config, "materialized", "") != "ephemeral"
