"""Attribution: whom a node belongs to, for people and for the warehouse.

A node's owner is its `meta.owner`, else the owner of its dbt `group` (name, else
email); a test without one of its own belongs to the model it tests. Failures are
routed by owner (notify.py). On Redshift every model's queries carry a `query_group`
naming the model, so STL_QUERY and SYS_QUERY_HISTORY tie warehouse time to models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbt_runner.engine.kinds import BUILT_TYPES

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

# Where a model's queries say where they came from; a model's own query_group wins.
QUERY_GROUP_PREFIX = "dbt:"


def _own_owner(manifest: Manifest, node: Any) -> str | None:
    meta = getattr(node, "meta", None) or getattr(getattr(node, "config", None), "meta", None)
    owner = (meta or {}).get("owner")
    if owner:
        return str(owner)
    config = getattr(node, "config", None)
    group_name = getattr(node, "group", None) or getattr(config, "group", None)
    if not group_name:
        return None
    for group in manifest.groups.values():
        if group.name == group_name:
            emails = group.owner.email
            email = emails[0] if isinstance(emails, list) and emails else emails
            return group.owner.name or (email if isinstance(email, str) else None)
    return None


def owner_of(manifest: Manifest | None, unique_id: str) -> str | None:
    """The owner of a node (a test: its own, else its model's); None when unknown."""
    if manifest is None:
        return None
    node: Any = manifest.nodes.get(unique_id)
    if node is None:
        return None
    owner = _own_owner(manifest, node)
    if owner or not unique_id.startswith("test."):
        return owner
    parents = [uid for uid in node.depends_on.nodes if uid.split(".", 1)[0] in BUILT_TYPES]
    tested = getattr(node, "attached_node", None) or (parents[0] if parents else None)
    tested_node = manifest.nodes.get(tested) if tested else None
    return _own_owner(manifest, tested_node) if tested_node is not None else None


def tag_query_groups(manifest: Manifest) -> int:
    """Give every model, seed and snapshot without a query_group one naming it (in this
    run's manifest only: dbt-redshift sets it around the node's queries)."""
    tagged = 0
    for node in manifest.nodes.values():
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        if kind not in BUILT_TYPES:
            continue
        config = node.config
        if config.get("query_group") is None:
            config["query_group"] = f"{QUERY_GROUP_PREFIX}{node.unique_id}"[:320]
            tagged += 1
    return tagged
