"""How a change flows through one query: which of its output columns it reaches, and
whether it decides which rows there are (then every row may change).

A query is qualified first (sqlglot: every column named with its source, every `*`
expanded from the columns its sources have), then its scopes are read in dependency
order, CTEs and subqueries before what reads them. A changed column reaches an output
when it is in that output's expression; anywhere else (a join, a filter, a group, a
window's partition or order, an ORDER BY, a subquery) it decides the rows, as it does
under DISTINCT, a UNION that is not ALL, or a function that makes rows. The query's
own change, against its code in the state, is compared scope by scope: only the
columns of a scope may differ, and each that does is changed where it is made. When
its CTEs or subqueries differ (a refactor), both are compared again with those sqlglot
can merge into their readers merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

from dbt_runner.reach.own import CLAUSES, Reshaped, Whole, merged, own_changes
from dbt_runner.reach.sql import Query, Unsure

# Functions that make rows: a changed column in one changes how many there are.
ROW_MAKERS: tuple[type[exp.Expr], ...] = (
    exp.UDTF,
    exp.GenerateSeries,
    *(getattr(exp, name) for name in ("ExplodingGenerateSeries",) if hasattr(exp, name)),
)
WINDOW_ORDER = "a window's PARTITION BY or ORDER BY"


@dataclass(frozen=True)
class Reaching:
    """What a change did to a relation the query reads, as the query sees it."""

    label: str  # the node's name, for reasons
    columns: frozenset[str] = frozenset()  # its columns whose values (or presence) changed
    whole: str | None = None  # why every row of it may have changed


@dataclass(frozen=True)
class Flow:
    """What a change does to one query's output."""

    outputs: tuple[str, ...]  # its columns, in order
    reached: frozenset[str] = frozenset()  # those a change reaches
    whole: str | None = None  # why every row may change
    before: tuple[str, ...] | None = None  # its columns in the state's code, when compared


def qualified(query: Query, columns: Mapping[str, Sequence[str]], dialect: str) -> exp.Query:
    """The query with every column qualified and every `*` expanded, from `columns`
    (analysis name -> its columns); Unsure when that cannot be done with certainty."""
    schema: dict[str, object] = {
        name: {column: "text" for column in listed} for name, listed in columns.items()
    }
    try:
        tree = qualify(query.tree.copy(), schema=schema, dialect=dialect)
    except (SqlglotError, KeyError, ValueError) as exc:
        said = str(exc).splitlines()[0][:160]
        raise Unsure(f"its columns cannot all be resolved ({said})") from None
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            star = projection if isinstance(projection, exp.Star) else projection.this
            if isinstance(star, exp.Star):
                raise Unsure("it selects * from a relation whose columns are unknown")
    return tree


def analyse(
    query: Query,
    columns: Mapping[str, Sequence[str]],
    parents: Mapping[str, Reaching],
    dialect: str,
    old: tuple[Query, Mapping[str, Sequence[str]]] | None = None,
) -> Flow:
    """What the changes of `parents` (analysis name -> what changed in it) and, given
    `old` (the state's code and its sources' columns then), the query's own change do
    to its output. `query`: the code now; `columns`: its sources' columns now;
    `dialect`: sqlglot's."""
    tree = qualified(query, columns, dialect)
    outputs = tuple(tree.named_selects)
    before = None
    makers = row_makers(dialect)
    try:
        seeds: dict[int, set[str]] = {}
        if old is not None:
            old_tree = qualified(old[0], old[1], dialect)
            before = tuple(old_tree.named_selects)
            try:
                seeds = own_changes(traverse_scope(old_tree), traverse_scope(tree), makers)
            except Reshaped:  # a refactor: compare the two with what can be merged, merged
                old_tree, tree = merged(old_tree), merged(tree)
                seeds = own_changes(traverse_scope(old_tree), traverse_scope(tree), makers)
        reached = flow(traverse_scope(tree), parents, seeds, makers)
    except Whole as whole:
        return Flow(outputs, whole=str(whole), before=before)
    return Flow(outputs, reached, before=before)


def row_makers(dialect: str) -> tuple[type[exp.Expr], ...]:
    """On PostgreSQL a function sqlglot does not know may return a set (more rows)."""
    return (*ROW_MAKERS, exp.Anonymous) if dialect == "postgres" else ROW_MAKERS


def flow(
    scopes: list[Scope],
    parents: Mapping[str, Reaching],
    seeds: Mapping[int, set[str]],
    makers: tuple[type[exp.Expr], ...],
) -> frozenset[str]:
    """The root's outputs the changes reach, scope by scope (`scopes`: the query's, in
    dependency order; `parents`: what changed in the relations it reads; `seeds`: each
    scope's own changed columns, by id of its expression; `makers`: the functions that
    make rows); Whole when they decide its rows."""
    reached: dict[int, frozenset[str]] = {}
    for scope in scopes:
        own = seeds.get(id(scope.expression), set())
        if isinstance(scope.expression, exp.SetOperation):
            found = _set_operation(scope.expression, reached) | own
        else:
            found = _select(scope, reached, parents, own, makers)
        if found and scope.scope_type in (ScopeType.SUBQUERY, ScopeType.UDTF):
            raise Whole("a changed column is in a subquery")
        reached[id(scope.expression)] = frozenset(found)
    return reached[id(scopes[-1].expression)]


def _branch(expression: exp.Expr) -> exp.Query:
    while isinstance(expression, exp.Subquery):
        expression = expression.this
    if not isinstance(expression, exp.Query):
        raise Unsure("a side of a set operation is not a query")
    return expression


def _set_operation(expression: exp.SetOperation, reached: dict[int, frozenset[str]]) -> set[str]:
    """A UNION's outputs reached through either side, by position."""
    outputs = expression.named_selects
    found: set[str] = set()
    for side in (expression.left, expression.right):
        branch = _branch(side)
        within = reached.get(id(branch))
        if within is None:
            raise Unsure("a part of a set operation was not read")
        names = branch.named_selects
        found |= {outputs[i] for i, name in enumerate(names) if name in within and i < len(outputs)}
    distinct = not isinstance(expression, exp.Union) or expression.args.get("distinct")
    if found and distinct:
        kind = expression.key.upper()
        raise Whole(f"a changed column is under {kind} (not UNION ALL): rows may merge or go")
    ordered = expression.args.get("order")
    if found and ordered and any(c.name in found for c in ordered.find_all(exp.Column)):
        raise Whole("a changed column orders a set operation")
    return found


def _select(
    scope: Scope,
    reached: dict[int, frozenset[str]],
    parents: Mapping[str, Reaching],
    own: set[str],
    makers: tuple[type[exp.Expr], ...],
) -> set[str]:
    """A select's outputs the changes reach; Whole when a changed column decides rows."""
    select = scope.expression
    for source in scope.sources.values():
        if isinstance(source, exp.Table) and source.name in parents:
            parent = parents[source.name]
            if parent.whole is not None:
                raise Whole(f"it reads {parent.label}, whose rows may all change")
    columns = [c for c in select.find_all(exp.Column) if _owner(c) is select]
    changed = {id(c) for c in columns if c.table and _reached(c, scope, reached, parents)}
    found = set(own)
    for projection in select.expressions:
        hits = [c for c in projection.find_all(exp.Column) if id(c) in changed]
        if hits:
            found.add(projection.alias_or_name)
            _rows_made_from(hits, projection, makers)
    for column in columns:
        is_changed = id(column) in changed or (not column.table and column.name in found)
        if not is_changed:
            continue
        clause = _clause(column, select)
        if clause is not None:
            raise Whole(f"{_said(column, scope, parents)} is in {clause}")
    if found and select.args.get("distinct"):
        raise Whole("a changed column is under DISTINCT: rows may merge")
    return found


def _owner(column: exp.Column) -> exp.Expr | None:
    return column.find_ancestor(exp.Select, exp.SetOperation)


def _source(column: exp.Column, scope: Scope) -> exp.Table | Scope:
    """Where a qualified column comes from: this scope's source, or an outer one's (a
    correlated subquery)."""
    at: Scope | None = scope
    while at is not None:
        source = at.sources.get(column.table)
        if source is not None:
            return source
        at = at.parent
    raise Unsure(f"the source of {column.sql()} is unknown")


def _reached(
    column: exp.Column,
    scope: Scope,
    reached: dict[int, frozenset[str]],
    parents: Mapping[str, Reaching],
) -> bool:
    source = _source(column, scope)
    if isinstance(source, exp.Table):
        parent = parents.get(source.name)
        return parent is not None and (parent.whole is not None or column.name in parent.columns)
    within = reached.get(id(source.expression))
    if within is None:
        raise Unsure(f"{column.sql()} reads a part of the query that was not read yet")
    return column.name in within


def _clause(column: exp.Column, select: exp.Expr) -> str | None:
    """Where in `select` a column sits: None in an output, else the clause (a reason)."""
    node: exp.Expr = column
    while node.parent is not None and node.parent is not select:
        parent = node.parent
        if isinstance(parent, exp.Window) and node.arg_key in ("partition_by", "order"):
            return WINDOW_ORDER
        node = parent
    if node.parent is None:
        raise Unsure(f"{column.sql()} is outside its select")
    key = node.arg_key or "?"
    return None if key == "expressions" else CLAUSES.get(key, key)


def _rows_made_from(
    hits: list[exp.Column], projection: exp.Expr, makers: tuple[type[exp.Expr], ...]
) -> None:
    """Whole when a changed column feeds a function that makes rows."""
    for column in hits:
        node = column.parent
        while node is not None and node is not projection.parent:
            if isinstance(node, makers):
                raise Whole("a changed column feeds a function that makes rows")
            node = node.parent


def _said(column: exp.Column, scope: Scope, parents: Mapping[str, Reaching]) -> str:
    """A column as a reason names it: `orders.amount` rather than an analysis name."""
    try:
        source = _source(column, scope)
    except Unsure:
        return column.name
    if isinstance(source, exp.Table) and source.name in parents:
        return f"{parents[source.name].label}.{column.name}"
    return column.name
