"""Dagster's names for dbt's nodes, as dagster-dbt's default translator gives them, so
that a team describing the project's assets with dagster-dbt (from the same manifest)
sees this image materialize exactly those assets and checks.

- An asset's key: the node's `meta.dagster.asset_key` when set; a source's: its source
  name and table name; a versioned model's: its alias; any other node's: its
  configured schema (when one is configured on it) and its name.
- A data test's check: named as the test, on the node it is attached to (its generic
  test's node, its single parent, or `meta.dagster.ref`).
- A key as Pipes writes it: its parts joined by `/` (a `/` inside a part escaped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

ASSET_TYPES = ("model", "seed", "snapshot")


def props_of(node: Any) -> dict[str, Any]:
    """The fields of a manifest node (dbt's object) that the names depend on, shaped as
    manifest.json has them."""
    config = getattr(node, "config", None)
    depends_on = getattr(node, "depends_on", None)
    return {
        "resource_type": str(getattr(node.resource_type, "value", node.resource_type)),
        "name": node.name,
        "alias": getattr(node, "alias", None),
        "version": getattr(node, "version", None),
        "source_name": getattr(node, "source_name", None),
        "meta": dict(getattr(node, "meta", None) or {}),
        "config": {
            "schema": getattr(config, "schema", None),
            "meta": dict(getattr(config, "meta", None) or {}),
            "severity": getattr(config, "severity", None),
        },
        "attached_node": getattr(node, "attached_node", None),
        "depends_on": {"nodes": list(getattr(depends_on, "nodes", None) or [])},
        "package_name": getattr(node, "package_name", None),
    }


def _dagster_meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = (props.get("config") or {}).get("meta") or props.get("meta") or {}
    dagster = meta.get("dagster") or {}
    return dagster if isinstance(dagster, Mapping) else {}


def asset_key(props: Mapping[str, Any]) -> list[str]:
    """The node's asset key, as parts."""
    configured = _dagster_meta(props).get("asset_key")
    if configured:
        return [str(part) for part in configured]
    if props["resource_type"] == "source":
        return [str(props["source_name"]), str(props["name"])]
    if props.get("version"):
        return [str(props["alias"])]
    schema = (props.get("config") or {}).get("schema")
    return [str(schema), str(props["name"])] if schema is not None else [str(props["name"])]


def user_string(parts: list[str]) -> str:
    """A key as Pipes and Dagster's UI write it."""
    return "/".join(part.replace("/", "\\/") for part in parts)


def checked_node(
    props: Mapping[str, Any], nodes: Callable[[], Iterable[tuple[str, Mapping[str, Any]]]]
) -> str | None:
    """The unique id of the node a data test checks, or None. `nodes`: the manifest's
    nodes as (unique id, props), asked for only when the test names its node by
    `meta.dagster.ref`."""
    upstream = list((props.get("depends_on") or {}).get("nodes") or [])
    attached = props.get("attached_node")
    if len(upstream) == 1:
        attached = upstream[0]
    ref = _dagster_meta(props).get("ref") or {}
    if ref:
        package = ref.get("package") or props.get("package_name")
        wanted = (ref["name"], package, ref.get("version"))
        found = (uid for uid, node in nodes() if _identity(node) == wanted)
        attached = next(found, None)
    return str(attached) if attached else None


def _identity(node: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return node["name"], node.get("package_name"), node.get("version")


def asset_keys_of(manifest: Any, unique_ids: Iterable[str]) -> list[str]:
    """The Dagster keys of the assets (models, seeds, snapshots) among `unique_ids`, nodes
    of `manifest` (dbt's object)."""
    keys = set()
    for unique_id in unique_ids:
        node = manifest.nodes.get(unique_id)
        if node is not None and props_of(node)["resource_type"] in ASSET_TYPES:
            keys.add(user_string(asset_key(props_of(node))))
    return sorted(keys)
