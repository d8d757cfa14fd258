"""The impact step of a pull-request run: after its build, each model it built against
production's relation of the same node, within the settings' bounds."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dbt_runner.impact.compare import Comparing
from dbt_runner.impact.plan import plan
from dbt_runner.impact.verdict import gate, model_impact
from dbt_runner.report.impact import ImpactInfo

if TYPE_CHECKING:
    from dbt_runner.config.review import ImpactSettings
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.report.model import NodeResult

log = logging.getLogger(__name__)

BUILDING = {"build", "run"}


def built_models(nodes: list[NodeResult], session: DbtSession) -> list[str]:
    """The models the run built (in the order dbt finished them), relations only."""
    manifest = session.manifest
    found: list[str] = []
    for result in nodes:
        node = manifest.nodes.get(result.unique_id) if manifest else None
        if node is None or result.resource_type != "model" or result.phase not in BUILDING:
            continue
        if result.outcome in ("ok", "warn") and node.config.materialized != "ephemeral":
            found.append(result.unique_id)
    return list(dict.fromkeys(found))


def measure_impact(
    session: DbtSession, settings: ImpactSettings, built: list[str], state_dir: Path
) -> ImpactInfo:
    """Compare each built model with production's; the gate's verdict on them.
    `session`: dbt, on the run's manifest; `settings`: DBT_RUNNER_PR_IMPACT__*; `built`: the
    models the run built; `state_dir`: the folder of production's state (its manifest.json)."""
    began = time.monotonic()
    production = json.loads((state_dir / "manifest.json").read_text())
    comparisons, over = plan(session.manifest, production, built, settings.max_models)
    comparing = Comparing(session, settings.timeout_s, settings.examples)
    found = comparing.run(comparisons)
    models = [model_impact(c, found.get(c.unique_id)) for c in comparisons] + over
    info = ImpactInfo(
        models=models,
        queries=comparing.queries,
        seconds=round(time.monotonic() - began, 3),
        gate=gate(models, settings.max_row_loss_pct),
    )
    log.info("impact: %s", info.headline())
    return info
