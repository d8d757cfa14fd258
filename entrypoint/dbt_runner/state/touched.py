"""What a run's writes touched: the relations it built, and the views the warehouse
dropped with them.

dbt-postgres and dbt-redshift replace a relation and drop the old one with `drop ...
cascade`: every view on it goes too (on Redshift, unless the view is late-binding:
`bind: false`). A run that rebuilt a table and stopped, or whose test on it failed,
or that selected the table alone, leaves the views below it dropped: they count as
touched, so the next slim job builds them again. DuckDB and BigQuery keep their views
(they are bound when queried).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dbt_runner.engine.kinds import BUILT_TYPES, config_value, kind_of

# Adapters whose views survive a rebuild of what they read.
LATE_BINDING = {"duckdb", "bigquery"}
VIEW_KINDS = {"view", "materialized_view"}


def cascades(adapter: str | None) -> bool:
    """Whether a rebuild on this adapter drops the views on the rebuilt relation
    (unknown adapters: assumed so, which only builds more)."""
    return adapter not in LATE_BINDING


def dropped_views(
    built: Iterable[str], child_map: Mapping[str, list[str]], nodes: Mapping[str, Any], adapter: str
) -> set[str]:
    """The views below `built` (unique ids) that a rebuild drops on `adapter`: through
    views and ephemeral models, which hold no relation of their own. `child_map` and
    `nodes` are the manifest's (objects or manifest.json's dicts)."""
    found: set[str] = set()
    seen: set[str] = set(built)
    pending = list(built)
    while pending:
        for child in child_map.get(pending.pop(), []):
            if child in seen:
                continue
            seen.add(child)
            drop = _dropped(nodes.get(child), adapter)
            if drop is None:
                continue
            if drop:
                found.add(child)
            pending.append(child)  # a view's views go with it; an ephemeral's readers
    return found


def _dropped(node: Any, adapter: str) -> bool | None:
    """True: a view that goes with what it reads; False: an ephemeral model (no
    relation, but its readers read what it reads); None: neither (a table survives)."""
    if node is None or kind_of(node) != "model":
        return None
    materialized = config_value(node, "materialized")
    if materialized == "ephemeral":
        return False
    if materialized not in VIEW_KINDS:
        return None
    late = adapter == "redshift" and config_value(node, "bind") is False
    return None if late else True


def touched(
    built: Iterable[str], manifest: Any, adapter: str | None
) -> tuple[list[str], list[str]]:
    """What the relations in `built` (unique ids) touched, as dbt selectors, and the
    views among them the rebuild dropped (unique ids)."""
    built = [uid for uid in built if uid.split(".", 1)[0] in BUILT_TYPES]
    dropped: set[str] = set()
    if manifest is not None and cascades(adapter):
        dropped = dropped_views(built, manifest.child_map, manifest.nodes, adapter or "")
    dropped -= set(built)
    selectors = {selector(manifest, uid) for uid in [*built, *dropped]}
    return sorted(s for s in selectors if s), sorted(dropped)


def selector(manifest: Any, unique_id: str) -> str | None:
    """A node as a dbt selector that names it alone (fqn:...)."""
    node = manifest.nodes.get(unique_id) if manifest is not None else None
    fqn = (node.get("fqn") if isinstance(node, dict) else node.fqn) if node is not None else None
    return "fqn:" + ".".join(fqn) if fqn else None
