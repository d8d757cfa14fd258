"""A copy of the parse that a command may change, for work that is not the build's.

dbt compiles nodes in place (compiled code, the CTEs of ephemeral models injected, and
marked so): a node compiled twice on one manifest keeps its second compile without
those CTEs. SQLFluff's templater and the children step compile; the build after them
must find the nodes as the parse left them. Each node is copied (dbt sets a node's
attributes, it does not change them) with the CTE list it appends to; the rest is
shared.
"""

from __future__ import annotations

import copy
from typing import Any


def working_copy(manifest: Any) -> Any:
    """`manifest` with every node its own copy."""
    copied = object.__new__(type(manifest))  # not copy.copy: Manifest pickles by its fields
    copied.__dict__.update(vars(manifest))
    copied.nodes = {unique_id: _node_copy(node) for unique_id, node in manifest.nodes.items()}
    return copied


def _node_copy(node: Any) -> Any:
    twin = copy.copy(node)
    if isinstance(vars(node).get("extra_ctes"), list):  # a seed's is a read-only property
        twin.extra_ctes = [copy.copy(cte) for cte in node.extra_ctes]
    return twin
