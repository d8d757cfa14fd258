"""Lineage: OpenLineage run events for the run and every node it executed.

The events are OpenLineage's own: its dbt artifact processor reads each node phase's
run_results.json with the run's manifest and names jobs and datasets exactly as
`openlineage-dbt` (dbt-ol) does, and its Python client sends them: a job per model and
snapshot, per tested model `<model>.build.test` with the `dataQualityAssertions` facet,
and per singular test one named by its unique_id. Two additions, named so they never
collide with dbt-ol's: seeds get events like models, and every generic test also gets
one of its own, named by its unique_id as singular tests are. The run itself
is the parent of them all, as dbt-ol's wrapping job is: START when the run started, then
COMPLETE or FAIL, with dbt's version, processing engine and invocation facets; every
node event's parent facet names it and the root (an orchestrator's run, given as dbt-ol
reads it from OPENLINEAGE_CONTEXT or OPENLINEAGE_PARENT_ID, else the run itself).

Sent when the run ends, bounded: each event has DBT_RUNNER_LINEAGE__TIMEOUT_S and one
retry of a refused connection (never of an event that may have arrived), and the first
event that fails stops the rest. A lineage endpoint that is down is a warning in the
report, never the run's exit code. (Imported only when lineage is configured: the
processor takes half a second to import.)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import job_type_job, test_run
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.uuid import generate_new_uuid
from openlineage.common.provider.dbt.facets import (  # type: ignore[import-untyped]
    DbtNodeJobFacet,
    ParentRunMetadata,
)
from openlineage.common.provider.dbt.local import (  # type: ignore[import-untyped]
    DbtLocalArtifactProcessor,
)
from openlineage.common.provider.dbt.processor import (  # type: ignore[import-untyped]
    DbtEvents,
    ModelNode,
)
from openlineage.common.provider.dbt.utils import (  # type: ignore[import-untyped]
    get_parent_run_metadata,
)

from dbt_runner.config import LineageSettings
from dbt_runner.engine.kinds import NODE_COMMAND_ORDER
from dbt_runner.report.model import LineageInfo, RunReport
from dbt_runner.versions import runner_version
from dbt_runner.workspace.prepare import Workspace

log = logging.getLogger(__name__)

# The run_results.json of each phase that executes nodes, kept by the phase runner.
RETRY = {"total": 1, "connect": 1, "read": 0, "status": 0, "backoff_factor": 0.2}
# The run facets dbt-ol copies from the first node event to its wrapping job's events.
JOB_FACETS = ("dbt_version", "processing_engine", "dbt_run")


def producer() -> str:
    return f"urn:dbt-runner:{runner_version()}"


class Processor(DbtLocalArtifactProcessor):  # type: ignore[misc]
    """OpenLineage's local dbt processor, with seeds and one event per test."""

    def _job(self, name: str, node: dict[str, Any], job_type: str) -> Job:
        facets = {
            "jobType": job_type_job.JobTypeJobFacet(
                jobType=job_type, integration="DBT", processingType="BATCH", producer=self.producer
            ),
            "dbt_node": DbtNodeJobFacet(
                original_file_path=node.get("original_file_path"),
                database=node.get("database"),
                schema=node.get("schema"),
                alias=node.get("alias"),
                unique_id=node.get("unique_id"),
            ),
        }
        return Job(namespace=self.job_namespace, name=name, facets=facets)

    def _events(
        self, run: dict[str, Any], ok: bool, job: Job, inputs: list[Any], output: Any, **facets: Any
    ) -> Any:
        started_at, completed_at = self.get_timings(run["timing"])
        return self.to_openlineage_events(
            "success" if ok else "error",
            started_at,
            completed_at,
            self.get_run(run_id=str(generate_new_uuid()), run_facets=facets),
            job,
            inputs,
            output,
        )

    def parse_execution(self, context: Any, nodes: dict[str, Any]) -> Any:
        events = super().parse_execution(context, nodes)
        for run in context.run_results["results"]:
            uid = run["unique_id"]
            if uid.startswith("seed.") and run["status"] != "skipped":
                events.add(self._seed(run, context.manifest["nodes"][uid]))
        return events

    def _seed(self, run: dict[str, Any], node: dict[str, Any]) -> Any:
        """A seed, named like a model: its table is the output, there are no inputs."""
        output = self.node_to_output_dataset(
            ModelNode(type="seed", metadata_node=node),
            has_facets=True,
            adapter_response=run.get("adapter_response"),
        )
        name = self._format_dataset_name(
            node["database"], node["schema"], run["unique_id"].removeprefix("seed.")
        ) + (".build.seed" if self.command == "build" else ".seed")
        job = self._job(name, node, "SEED")
        return self._events(run, run["status"] == "success", job, [], output)

    def parse_test(self, context: Any, nodes: dict[str, Any]) -> Any:
        """dbt-ol's events (one per tested model, its assertions as a facet), and one
        more per test."""
        events = super().parse_test(context, nodes)
        events += self._per_test(context, nodes)
        return events

    def _per_test(self, context: Any, nodes: dict[str, Any]) -> Any:
        """An event per generic test (dbt-ol has one per singular test already)."""
        events = DbtEvents()
        known = {**context.manifest["nodes"], **context.manifest["sources"]}
        parents = context.manifest.get("parent_map", {})
        for run in context.run_results["results"]:
            uid = run["unique_id"]
            node = nodes.get(uid)
            if not uid.startswith("test.") or node is None or run["status"] == "skipped":
                continue
            if node.get("test_metadata") is None:
                continue  # a singular test
            inputs = self._resolve_test_inputs(uid, parents, known)
            test = test_run.TestRunFacet(tests=[self._build_test_execution(run, node, inputs)])
            ok = run["status"] in ("pass", "warn")
            events.add(self._events(run, ok, self._job(uid, node, "TEST"), inputs, None, test=test))
        return events


def node_events(
    settings: LineageSettings,
    project_dir: Path,
    target_path: Path,
    target: str | None,
    parent: Any,
) -> list[Any]:
    """The events of every node phase's run results, in the order the phases ran.
    `settings`: DBT_RUNNER_LINEAGE__*; `project_dir`: the project; `target_path`: dbt's
    target (its manifest and each phase's run results); `target`: the profile's target;
    `parent`: the run, as every node event's parent."""
    events: list[Any] = []
    for phase in NODE_COMMAND_ORDER:
        results = target_path / "phases" / phase / "run_results.json"
        if not results.is_file():
            continue
        processor = Processor(
            producer=producer(),
            job_namespace=settings.namespace,
            project_dir=str(project_dir),
            target=target,
            skip_errors=True,
            logger=log,
        )
        processor.manifest_path = str(target_path / "manifest.json")
        processor.run_result_path = str(results)
        processor.catalog_path = str(target_path / "catalog.json")
        processor.dbt_run_metadata = parent
        found = processor.parse()
        ends = {event.run.runId: event for event in found.completes + found.fails}
        for start in found.starts:
            events += [start, ends[start.run.runId]]
    return events


def job_events(
    settings: LineageSettings,
    report: RunReport,
    run_id: str,
    orchestrator: ParentRunMetadata | None,
    first_node: Any | None,
) -> tuple[Any, Any]:
    """The run's own START and COMPLETE (or FAIL), as dbt-ol's wrapping job: its parent
    is the orchestrator's run when there is one, and it carries dbt's version,
    processing engine and invocation facets from the first node event.
    `settings`: DBT_RUNNER_LINEAGE__*; `report`: the run's; `run_id`: its OpenLineage run
    id; `orchestrator`: the run that launched it, if one did; `first_node`: the first node
    event (its facets)."""
    job = Job(
        namespace=job_namespace(settings, orchestrator),
        name=job_name(report),
        facets={
            "jobType": job_type_job.JobTypeJobFacet(
                jobType="JOB", integration="DBT", processingType="BATCH"
            )
        },
    )
    facets: dict[str, Any] = {"parent": orchestrator.to_openlineage()} if orchestrator else {}
    node_facets = first_node.run.facets if first_node is not None else {}
    facets |= {key: node_facets[key] for key in JOB_FACETS if key in node_facets}
    end = report.finished_at or report.started_at
    state = RunState.COMPLETE if report.exit_code == 0 else RunState.FAIL
    events = []
    for kind, when in ((RunState.START, report.started_at), (state, end)):
        run = Run(runId=run_id, facets=facets)
        events.append(
            RunEvent(
                eventType=kind, eventTime=when.isoformat(), run=run, job=job, producer=producer()
            )
        )
    return events[0], events[1]


def run_parent(
    settings: LineageSettings, report: RunReport, run_id: str, orchestrator: Any
) -> ParentRunMetadata:
    """The parent facet of every node event: this run, as its own events name it, and
    the root of the chain (the orchestrator's root when it gives one, else this run).
    `settings`: DBT_RUNNER_LINEAGE__*; `report`: the run's; `run_id`: its OpenLineage run
    id; `orchestrator`: the run that launched it, if one did."""
    own = (run_id, job_name(report), job_namespace(settings, orchestrator))
    root = own
    if orchestrator is not None:
        given = (
            orchestrator.root_parent_run_id,
            orchestrator.root_parent_job_name,
            orchestrator.root_parent_job_namespace,
        )
        fallback = (orchestrator.run_id, orchestrator.job_name, orchestrator.job_namespace)
        root = given if all(given) else fallback
    return ParentRunMetadata(
        run_id=own[0],
        job_name=own[1],
        job_namespace=own[2],
        root_parent_run_id=root[0],
        root_parent_job_name=root[1],
        root_parent_job_namespace=root[2],
    )


def job_namespace(settings: LineageSettings, orchestrator: Any) -> str:
    """The wrapping job's namespace: the orchestrator's when one launched the run (as
    dbt-ol names it), else the configured one."""
    return str(orchestrator.job_namespace) if orchestrator else settings.namespace


def job_name(report: RunReport) -> str:
    return f"dbt-run-{report.project}"


def client(settings: LineageSettings) -> OpenLineageClient:
    key = settings.api_key.get_secret_value() if settings.api_key else None
    auth = ApiKeyTokenProvider({"apiKey": key}) if key else TokenProvider({})
    config = HttpConfig(url=str(settings.url), timeout=settings.timeout_s, auth=auth, retry=RETRY)
    return OpenLineageClient(transport=HttpTransport(config))


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def emit(
    settings: LineageSettings,
    report: RunReport,
    project_dir: Path,
    target_path: Path,
    target: str | None,
    budget_s: float | None = None,
) -> LineageInfo:
    """Send the run's events (within `budget_s` in all, when given: after a stop);
    whatever fails is the returned info's error.
    `settings`: DBT_RUNNER_LINEAGE__*; `report`: the run's; `project_dir`: the project;
    `target_path`: dbt's target; `target`: the profile's target."""
    info = LineageInfo(url=safe_url(str(settings.url)))
    started = time.monotonic()
    if budget_s is not None:
        settings = settings.model_copy(update={"timeout_s": min(settings.timeout_s, budget_s)})
    try:
        run_id = str(generate_new_uuid(report.started_at))
        orchestrator = get_parent_run_metadata()  # as dbt-ol reads it, when one is given
        parent = run_parent(settings, report, run_id, orchestrator)
        nodes = []
        if (target_path / "manifest.json").is_file():
            nodes = node_events(settings, project_dir, target_path, target, parent)
        first = nodes[0] if nodes else None
        start, finish = job_events(settings, report, run_id, orchestrator, first)
        events = [start, *nodes, finish]
        sender = client(settings)
        for event in events:
            if budget_s is not None and time.monotonic() - started > budget_s:
                raise TimeoutError("the time after the stop was spent")
            sender.emit(event)
            info.events += 1
    except Exception as exc:  # the endpoint, or the processor: never the run
        info.error = f"{type(exc).__name__}: {exc}"[:500]
    log.info("lineage: %d event(s) in %.1f s", info.events, time.monotonic() - started)
    return info


def emit_for(
    settings: LineageSettings,
    report: RunReport,
    workspace: Workspace,
    budget_s: float | None = None,
) -> LineageInfo:
    """The run's events, with the profile's environment set (its env_var()s render as
    dbt rendered them): what was sent, and what stopped the rest. `budget_s`: the time
    they may take in all (after a stop).
    `settings`: DBT_RUNNER_LINEAGE__*; `report`: the run's; `workspace`: its project and
    profile."""
    with workspace.dbt_context():
        return emit(
            settings,
            report,
            workspace.project.dir,
            workspace.target_path,
            workspace.profile.target,
            budget_s,
        )
