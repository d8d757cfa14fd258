"""Compiled SQL as the analysis reads it: parsed by sqlglot in the adapter's dialect,
comments dropped, and every relation renamed after the node it holds.

Two compilations of one model name its parents differently (the target's schema, a
parent deferred to production's, a pull request's): relations are compared by node.
An ephemeral model's CTE (dbt's `__dbt__cte__<name>`) is cut out and read as a
relation of its own: its code is its own node's to compare.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

# sqlglot warns on every statement it keeps unparsed; the analysis says so itself.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

# dbt adapter type -> sqlglot dialect; an adapter without one builds every child.
DIALECTS = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "redshift": "redshift",
    "bigquery": "bigquery",
    "snowflake": "snowflake",
    "databricks": "databricks",
    "spark": "spark",
    "trino": "trino",
}
EPHEMERAL = "__dbt__cte__"
AMBIGUOUS = ""  # a relation name two nodes claim

Key = tuple[str, ...]


class Unsure(Exception):
    """SQL the analysis cannot read with certainty: the node is built."""


def node_name(unique_id: str) -> str:
    """The name a node's relation has in the analysis: the same in every compilation."""
    return "n_" + hashlib.sha256(unique_id.encode()).hexdigest()[:16]


def outside_name(key: Key) -> str:
    """The name of a relation no node holds (a table the project reads by its name)."""
    return "x_" + hashlib.sha256(".".join(key).encode()).hexdigest()[:16]


def relation_key(table: exp.Table) -> Key:
    return tuple(part.lower() for part in (table.catalog, table.db, table.name) if part)


@dataclass
class Names:
    """Which node each relation name holds: the relations of this run's manifest and of
    the state's (a parent deferred to it), and each ephemeral model's CTE."""

    dialect: str
    relations: dict[Key, str] = field(default_factory=dict)
    ephemerals: dict[str, str] = field(default_factory=dict)  # CTE name -> unique id

    def add(self, unique_id: str, relation_name: str | None) -> None:
        """A node or source and the relation it holds (`relation_name` as dbt renders it)."""
        if not relation_name:
            return
        try:
            key = relation_key(exp.to_table(relation_name, dialect=self.dialect))
        except SqlglotError:
            return
        known = self.relations.get(key)
        self.relations[key] = unique_id if known in (None, unique_id) else AMBIGUOUS

    def add_ephemeral(self, unique_id: str, name: str) -> None:
        self.ephemerals[(EPHEMERAL + name).lower()] = unique_id

    def node_of(self, table: exp.Table) -> str | None:
        """The node a relation holds; None: none of the project's."""
        found = self.relations.get(relation_key(table))
        if found == AMBIGUOUS:
            raise Unsure(f"two nodes hold {table.sql()}")
        return found


@dataclass(frozen=True)
class Query:
    """One compiled query, its relations renamed (node_name, outside_name)."""

    tree: exp.Query
    reads: dict[str, str | None]  # name -> unique id (None: no node of the project)
    relations: dict[str, exp.Table]  # name -> the relation as the SQL names it

    def same_as(self, other: Query) -> bool:
        """The same query, comments, whitespace and relation names aside."""
        return self.tree == other.tree


def read(sql: str, names: Names) -> Query:
    """`sql` parsed and normalised; Unsure when sqlglot cannot read all of it."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=names.dialect) if s is not None]
    except SqlglotError as exc:
        raise Unsure(f"sqlglot cannot parse it ({str(exc).splitlines()[0][:160]})") from None
    if len(statements) != 1:
        raise Unsure("it is not one query")
    tree = statements[0]
    if tree.find(exp.Command) is not None:
        raise Unsure("sqlglot keeps part of it unparsed")
    if not isinstance(tree, exp.Query):
        raise Unsure("it is not a query")
    for node in tree.walk():
        node.comments = None
    cut = _cut_ephemerals(tree, names)
    reads, relations = _rename_relations(tree, names, cut)
    return Query(tree, reads, relations)


def _cut_ephemerals(tree: exp.Query, names: Names) -> dict[str, str]:
    """Remove the ephemeral models' CTEs; their names -> unique ids."""
    cut: dict[str, str] = {}
    for cte in list(tree.find_all(exp.CTE)):
        alias = cte.alias.lower()
        if not alias.startswith(EPHEMERAL):
            continue
        unique_id = names.ephemerals.get(alias)
        if unique_id is None:
            raise Unsure(f"{cte.alias} is no ephemeral model of the project")
        cut[alias] = unique_id
        holder = cte.parent
        cte.pop()
        if isinstance(holder, exp.With) and not holder.expressions:
            holder.pop()
    return cut


def _rename_relations(
    tree: exp.Query, names: Names, cut: dict[str, str]
) -> tuple[dict[str, str | None], dict[str, exp.Table]]:
    """Each relation (and each cut ephemeral) renamed after its node; what it reads."""
    ctes = {cte.alias.lower() for cte in tree.find_all(exp.CTE)}
    reads: dict[str, str | None] = {}
    relations: dict[str, exp.Table] = {}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function: its columns are unknown, and say so later
        bare = not table.db and not table.catalog
        unique_id: str | None
        if bare and table.name.lower() in cut:
            unique_id = cut[table.name.lower()]
            name = node_name(unique_id)
        elif bare and table.name.lower() in ctes:
            continue
        else:
            unique_id = names.node_of(table)
            name = node_name(unique_id) if unique_id else outside_name(relation_key(table))
            relations[name] = table.copy()
        reads[name] = unique_id
        original = table.name
        table.set("this", exp.to_identifier(name))
        table.set("db", None)
        table.set("catalog", None)
        if not table.alias:  # columns may be qualified by the relation's own name
            table.set("alias", exp.TableAlias(this=exp.to_identifier(original)))
    return reads, relations
