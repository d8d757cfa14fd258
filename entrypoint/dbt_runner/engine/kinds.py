"""dbt's vocabulary, written once: the kinds of node and the commands that run them."""

from __future__ import annotations

from typing import Any

# Nodes whose build makes a relation in the warehouse.
BUILT_TYPES = frozenset({"model", "seed", "snapshot"})
# The commands that run nodes, in the order a job runs them; `retry` re-runs another's
# (the last that ran wins).
NODE_COMMAND_ORDER = ("seed", "snapshot", "run", "test", "build", "retry")
NODE_COMMANDS = frozenset(NODE_COMMAND_ORDER)
# The resource types each node command executes.
EXECUTED_TYPES: dict[str, list[str]] = {
    "seed": ["seed"],
    "snapshot": ["snapshot"],
    "run": ["model"],
    "test": ["test", "unit_test"],
    "build": ["model", "seed", "snapshot", "test", "unit_test"],
}
# The dbt commands that write into the warehouse (the `dbt` passthrough's too).
BUILDING_COMMANDS = frozenset({"seed", "snapshot", "run", "build", "retry", "clone"})


def kind_of(node: Any) -> str:
    """A node's resource type as text: of dbt's objects, or manifest.json's dicts."""
    value = node.get("resource_type") if isinstance(node, dict) else node.resource_type
    return str(getattr(value, "value", value))


def config_value(node: Any, name: str) -> Any:
    """A node's config value, of dbt's objects or manifest.json's dicts."""
    config = node.get("config") if isinstance(node, dict) else getattr(node, "config", None)
    if config is None:
        return None
    return config.get(name) if hasattr(config, "get") else getattr(config, name, None)


def makes_relation(node: Any) -> bool:
    """Whether building the node makes a relation (an ephemeral model does not)."""
    return kind_of(node) in BUILT_TYPES and config_value(node, "materialized") != "ephemeral"
