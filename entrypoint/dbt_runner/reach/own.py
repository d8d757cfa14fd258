"""A query's own change against its code in the state, scope by scope: which of its
columns changed, and whether anything else did (then its rows may all change).

Only the columns of a scope may differ, each changed where it is made; a changed
clause, a column changed under DISTINCT, a new aggregate without GROUP BY, a window
or a function that makes rows, or columns in another order make it whole. When its
CTEs or subqueries differ (a refactor), flow.py compares the two again with those
sqlglot can merge into their readers merged.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.eliminate_ctes import eliminate_ctes
from sqlglot.optimizer.merge_subqueries import merge_subqueries
from sqlglot.optimizer.scope import Scope, traverse_scope

from dbt_runner.reach.sql import Query, Unsure

# Where a column sits in a select, as a reason says it.
CLAUSES = {
    "from_": "FROM",
    "joins": "a JOIN",
    "where": "WHERE",
    "group": "GROUP BY",
    "having": "HAVING",
    "qualify": "QUALIFY",
    "order": "ORDER BY",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "distinct": "DISTINCT",
    "laterals": "a LATERAL",
    "windows": "a WINDOW",
}


class Whole(Exception):
    """The change may alter every row (the message says why)."""


class Reshaped(Whole):
    """The query's CTEs or subqueries are not the ones it had."""


def clause_changed(before: Query, after: Query) -> str | None:
    """Why a query's own change decides its rows, read before its columns are known
    (no warehouse asked): a clause besides its select list differs in a scope that kept
    its place. None when that cannot be told so (the full comparison decides). A
    difference qualifying would have removed (`id` against `t.id`) is still one: built."""
    try:
        old, new = traverse_scope(before.tree), traverse_scope(after.tree)
    except (SqlglotError, KeyError, ValueError):
        return None
    if [_shape(s) for s in old] != [_shape(s) for s in new]:
        return None
    for was, now in zip(old, new, strict=True):
        clause = _differing_clause(_skeleton(was.expression), _skeleton(now.expression))
        if clause is not None:
            return f"its {clause} changed"
    return None


def own_changes(
    before: list[Scope], after: list[Scope], makers: tuple[type[exp.Expr], ...]
) -> dict[int, set[str]]:
    """Each scope's changed and added columns (by id of its expression in `after`);
    Whole when anything but a scope's columns changed, or a column changed where it
    decides rows."""
    if [_shape(s) for s in before] != [_shape(s) for s in after]:
        raise Reshaped("its CTEs or subqueries changed")
    seeds: dict[int, set[str]] = {}
    for old, new in zip(before, after, strict=True):
        clause = _differing_clause(_skeleton(old.expression), _skeleton(new.expression))
        if clause is not None:
            raise Whole(f"its {clause} changed")
        if isinstance(new.expression, exp.Select) and isinstance(old.expression, exp.Select):
            seeds[id(new.expression)] = _changed_columns(old.expression, new.expression, makers)
    return seeds


def merged(tree: exp.Query) -> exp.Query:
    """The qualified query with every CTE and subquery sqlglot can merge into what
    reads it merged (those under an aggregate, DISTINCT, a window, a join it cannot
    move stay), and the CTEs left unread dropped: a refactor and its original read the
    same. Unchanged when sqlglot cannot."""
    try:
        result = eliminate_ctes(merge_subqueries(tree.copy()))
    except (SqlglotError, KeyError, ValueError, AttributeError):
        return tree
    return result if isinstance(result, exp.Query) else tree


def _shape(scope: Scope) -> tuple[str, str]:
    parent = scope.expression.parent
    name = parent.alias if isinstance(parent, (exp.CTE, exp.Subquery)) else ""
    return scope.scope_type.name, name.lower()


def _skeleton(expression: exp.Expr) -> exp.Expr:
    """A scope's expression without its columns, CTEs and inner queries (each of
    those is compared as a scope of its own)."""
    copy = expression.copy()
    copy.set("with_", None)
    if isinstance(copy, exp.Select):
        copy.set("expressions", [])
    inner = [q for q in copy.find_all(exp.Select, exp.SetOperation) if q is not copy]
    for query in inner:
        if query.parent is not None:
            query.replace(exp.Placeholder())
    return copy


def _differing_clause(before: exp.Expr, after: exp.Expr) -> str | None:
    if before == after:
        return None
    if type(before) is not type(after):
        return "kind of query"
    for key in sorted(set(before.args) | set(after.args)):
        if (before.args.get(key) or None) != (after.args.get(key) or None):
            return CLAUSES.get(key, key.rstrip("_").upper())
    return "structure"


def _changed_columns(
    before: exp.Select, after: exp.Select, makers: tuple[type[exp.Expr], ...]
) -> set[str]:
    old, new = _projections(before), _projections(after)
    changed = {name for name in new if name in old and new[name] != old[name]}
    added, removed = set(new) - set(old), set(old) - set(new)
    kept_before = [name for name in old if name in new]
    kept_after = [name for name in new if name in old]
    if kept_before != kept_after:
        raise Whole("its columns' order changed")
    touched = [new[n] for n in changed | added] + [old[n] for n in changed | removed]
    if touched and after.args.get("distinct"):
        raise Whole("a column under DISTINCT changed: rows may merge")
    grouped = after.args.get("group") is not None
    for expression in touched:
        if not grouped and expression.find(exp.AggFunc) is not None:
            raise Whole("an aggregate changed in a select without GROUP BY: the row count may")
        if expression.find(exp.Window) is not None:
            raise Whole("a window function changed")
        if expression.find(*makers) is not None:
            raise Whole("a function that makes rows changed")
    return changed | added


def _projections(select: exp.Select) -> dict[str, exp.Expr]:
    found: dict[str, exp.Expr] = {}
    for projection in select.expressions:
        name = projection.alias_or_name
        if name in found:
            raise Unsure(f"two of its columns are named {name}")
        found[name] = projection.this if isinstance(projection, exp.Alias) else projection
    return found
