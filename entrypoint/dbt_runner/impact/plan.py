"""Which models a pull request's impact compares, with which relations and key.

The pull request's side comes from the run's own manifest, production's from the
manifest of the state the run deferred to: the relations that state says production
holds. Models are taken in the order that matters to a reviewer: the ones whose code
changed first, then what they feed, in the order dbt built them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dbt_runner.report.impact import ModelImpact

PLAIN_NAME = re.compile(r"^\w+$")


@dataclass(frozen=True)
class Relation:
    database: str | None
    schema: str
    identifier: str

    def __str__(self) -> str:
        return ".".join(part for part in (self.database, self.schema, self.identifier) if part)

    def as_dict(self) -> dict[str, str | None]:
        return {"database": self.database, "schema": self.schema, "identifier": self.identifier}


@dataclass
class Comparison:
    unique_id: str
    name: str
    pr: Relation
    production: Relation | None  # None: the node is new in the pull request
    key: list[str] = field(default_factory=list)
    no_key: str | None = None  # why it has no key
    modified: bool = False


def plan(
    manifest: Any, production: dict[str, Any], built: list[str], max_models: int
) -> tuple[list[Comparison], list[ModelImpact]]:
    """The comparisons to run (at most `max_models`), and the models over the limit.
    `manifest`: the run's; `production`: production's manifest.json (parsed); `built`: the
    models the run built, in order; `max_models`: the limit."""
    nodes = production.get("nodes", {})
    keys = KeyIndex(manifest)
    comparisons = [_comparison(manifest.nodes[uid], nodes.get(uid), keys) for uid in built]
    comparisons.sort(key=lambda c: not c.modified)  # stable: build order within each
    over = [
        ModelImpact(
            unique_id=c.unique_id,
            name=c.name,
            status="not_compared",
            reason=f"over the limit of {max_models} models (DBT_RUNNER_PR_IMPACT__MAX_MODELS)",
            pr=str(c.pr),
            modified=c.modified,
        )
        for c in comparisons[max_models:]
    ]
    return comparisons[:max_models], over


def _comparison(node: Any, production: dict[str, Any] | None, keys: KeyIndex) -> Comparison:
    key = keys.key_of(node)
    comparison = Comparison(
        unique_id=node.unique_id,
        name=node.name,
        pr=Relation(node.database, node.schema, node.alias or node.name),
        production=None,
        key=key or [],
        no_key=None if key else "no key: add unique + not_null tests or meta.primary_key",
        modified=production is None,
    )
    if production is not None:
        comparison.production = Relation(
            production.get("database"),
            production["schema"],
            production.get("alias") or production["name"],
        )
        checksum = (production.get("checksum") or {}).get("checksum")
        comparison.modified = checksum != node.checksum.checksum
    return comparison


class KeyIndex:
    """The key of each model: `meta.primary_key`, a primary-key constraint, or a column
    with both `unique` and `not_null` tests (or a unique combination of columns)."""

    def __init__(self, manifest: Any) -> None:
        self.tests: dict[str, dict[str, set[str]]] = {}  # model -> column -> tests
        self.combinations: dict[str, list[str]] = {}
        for node in manifest.nodes.values():
            self._index(node)

    def _index(self, node: Any) -> None:
        metadata = getattr(node, "test_metadata", None)
        attached = getattr(node, "attached_node", None)
        if metadata is None or attached is None:
            return
        if metadata.name == "unique_combination_of_columns":
            columns = metadata.kwargs.get("combination_of_columns") or []
            if columns and all(PLAIN_NAME.match(str(c)) for c in columns):
                self.combinations.setdefault(attached, [str(c) for c in columns])
            return
        column = getattr(node, "column_name", None)
        if column and PLAIN_NAME.match(column):
            self.tests.setdefault(attached, {}).setdefault(column, set()).add(metadata.name)

    def key_of(self, node: Any) -> list[str] | None:
        declared = _declared_key(node)
        if declared:
            return declared
        tested = self.tests.get(node.unique_id, {})
        for column, tests in tested.items():
            if "unique" in tests and "not_null" in tests:
                return [column]
        return self.combinations.get(node.unique_id)


def _declared_key(node: Any) -> list[str] | None:
    meta = {**(node.meta or {}), **(node.config.meta or {})}
    declared = meta.get("primary_key")
    if isinstance(declared, str) and declared:
        return [declared]
    if isinstance(declared, list) and declared:
        return [str(column) for column in declared]
    for constraint in getattr(node, "constraints", None) or []:
        if _is_primary_key(constraint) and constraint.columns:
            return list(constraint.columns)
    for name, column in (node.columns or {}).items():
        if any(_is_primary_key(c) for c in column.constraints or []):
            return [name]
    return None


def _is_primary_key(constraint: Any) -> bool:
    kind = getattr(constraint.type, "value", constraint.type)
    return str(kind) == "primary_key"
