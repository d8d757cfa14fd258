"""Which descendants of a slim job's changes to build: the DAG walked from the changes,
in order, each node deciding from what its changed parents did.

A changed model's SQL is compared with its SQL in the state (flow.py); a change that
is not in the SQL alone (its config, a macro it calls, a new node, a seed's rows) may
change every row. A descendant is built when a changed parent's column reaches one of
its outputs (its own readers then decide on those), and with everything below it when
a changed column decides its rows or a parent's rows may all change; it is skipped when
it reads none of what changed. Whatever the analysis cannot read with certainty is
built, as `state:modified+` builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlglot import exp

from dbt_runner.reach.flow import Flow, Reaching, analyse
from dbt_runner.reach.own import clause_changed
from dbt_runner.reach.sql import Key, Names, Query, Unsure, read, relation_key

# Materializations whose relation holds what their SQL selects.
SQL_MATERIALIZATIONS = {"table", "view", "incremental", "ephemeral", "materialized_view"}

Kind = Literal["equivalent", "additive", "columns", "whole", "unreached", "ephemeral"]


@dataclass(frozen=True)
class Node:
    """What the walk needs of a node of the manifest."""

    unique_id: str
    name: str
    resource_type: str  # model, seed, snapshot, source
    materialized: str | None = None
    language: str = "sql"
    parents: tuple[str, ...] = ()
    incremental_branch: bool = False  # its raw code asks is_incremental()

    @property
    def ephemeral(self) -> bool:
        return self.materialized == "ephemeral"


@dataclass(frozen=True)
class Decision:
    """One node's decision: built or not, and why."""

    unique_id: str
    build: bool
    kind: Kind
    reason: str
    columns: tuple[str, ...] = ()  # the outputs a change reaches
    changed: bool = False  # a change of its own (dbt's state:modified)


class Code(Protocol):
    """Where the walk reads SQL and columns (step.py: the state, dbt, the warehouse)."""

    def old_sql(self, unique_id: str) -> str | None:
        """The node's compiled SQL in the state: what its relation was built with."""

    def new_sql(self, unique_id: str) -> str | None:
        """A changed node's compiled SQL now."""

    def list_columns(self, tables: Sequence[exp.Table]) -> Mapping[Key, Sequence[str]]:
        """The columns the warehouse reports for each relation (none: it has none)."""


@dataclass
class Walk:
    """One walk from the changes; `decide` makes and runs it."""

    nodes: Mapping[str, Node]
    changes: Mapping[str, str | None]  # unique id -> why it changes whole (None: its SQL)
    code: Code
    names: Names
    flows: dict[str, Flow] = field(default_factory=dict)
    reaching: dict[str, Reaching] = field(default_factory=dict)
    listed: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    queries: dict[tuple[str, bool], Query] = field(default_factory=dict)

    def run(self) -> list[Decision]:
        decided = []
        for wave in waves(self.nodes, self.changes):
            self._list_for([uid for uid in wave if self._reads_sql(self.nodes[uid])])
            decided += [self._decide(self.nodes[uid]) for uid in wave]
        return decided

    def _reads_sql(self, node: Node) -> bool:
        """Whether deciding the node reads its SQL (what it reads may have changed, and
        not so that it changes whole anyway)."""
        parents = {p: self.reaching[p] for p in node.parents if p in self.reaching}
        if node.unique_id not in self.changes and not parents:
            return False
        return self._whole(node, parents) is None

    # --- reading ---------------------------------------------------------------

    def _query(self, unique_id: str, new: bool) -> Query:
        """A node's SQL now (`new`, a changed node's) or in the state, read once."""
        key = (unique_id, new)
        if key not in self.queries:
            sql = self.code.new_sql(unique_id) if new else self.code.old_sql(unique_id)
            if sql is None:
                where = "its compiled SQL now" if new else "the state keeps no compiled SQL for it"
                raise Unsure(where if not new else f"{where} is unknown")
            self.queries[key] = read(sql, self.names)
        return self.queries[key]

    def _list_for(self, wave: Iterable[str]) -> None:
        """The columns of every relation the wave's queries read, in one listing."""
        tables: dict[Key, exp.Table] = {}
        for uid in wave:
            for new in (False, True) if uid in self.changes else (False,):
                try:
                    query = self._query(uid, new)
                except Unsure:
                    continue
                for table in query.relations.values():
                    tables.setdefault(relation_key(table), table)
        self._list(tables)

    def _list(self, tables: Mapping[Key, exp.Table]) -> None:
        wanted = [table for key, table in tables.items() if key not in self.listed]
        if not wanted:
            return
        found = self.code.list_columns(wanted)
        for table in wanted:
            key = relation_key(table)
            self.listed[key] = tuple(c.lower() for c in found.get(key, ()))

    def _columns(self, query: Query, now: bool) -> dict[str, Sequence[str]]:
        """Each relation's columns as the query sees them: now (`now`, after this job's
        changes) or before them."""
        columns: dict[str, Sequence[str]] = {}
        for name, unique_id in query.reads.items():
            flow = self.flows.get(unique_id) if unique_id else None
            if flow is not None and flow.whole is None:
                columns[name] = flow.outputs if now or flow.before is None else flow.before
            elif unique_id is not None and self.nodes.get(unique_id, NOBODY).ephemeral:
                columns[name] = self._ephemeral_outputs(unique_id)
            elif name in query.relations:
                listed = self.listed.get(relation_key(query.relations[name]))
                if listed:  # a relation with no columns is not there: leave it unknown
                    columns[name] = listed
        return columns

    def _ephemeral_outputs(self, unique_id: str) -> Sequence[str]:
        """An unchanged ephemeral model's columns, from its SQL (it has no relation)."""
        query = self._query(unique_id, new=False)
        self._list({relation_key(t): t for t in query.relations.values()})
        return analyse(query, self._columns(query, now=False), {}, self.names.dialect).outputs

    # --- deciding --------------------------------------------------------------

    def _decide(self, node: Node) -> Decision:
        changed = node.unique_id in self.changes
        parents = {p: self.reaching[p] for p in node.parents if p in self.reaching}
        if not changed and not parents:
            return Decision(node.unique_id, False, "unreached", self._unreached(node))
        whole = self._whole(node, parents)
        if whole is None:
            try:
                flow = self._flow(node, changed)
            except Unsure as exc:
                whole = f"unsure: {exc}"
            else:
                return self._from_flow(node, flow, changed, parents)
        self.reaching[node.unique_id] = Reaching(node.name, whole=whole)
        return self._made(node, True, "whole", whole, (), changed)

    def _whole(self, node: Node, parents: Mapping[str, Reaching]) -> str | None:
        """Why a node changes whole before its SQL is read, or None."""
        if node.unique_id in self.changes and self.changes[node.unique_id] is not None:
            return self.changes[node.unique_id]
        for reaching in parents.values():
            if reaching.whole is not None:
                return f"it reads {reaching.label}, whose rows may all change"
        changed = node.unique_id in self.changes
        return unreadable(node, changed) or (self._clause_changed(node) if changed else None)

    def _clause_changed(self, node: Node) -> str | None:
        """A changed filter, join or grouping, seen before any column is listed."""
        try:
            old, new = self._query(node.unique_id, new=False), self._query(node.unique_id, True)
        except Unsure:
            return None  # said when its flow is read
        return clause_changed(old, new)

    def _flow(self, node: Node, changed: bool) -> Flow:
        """What the changes do to the node: its SQL now against its SQL before."""
        old = self._query(node.unique_id, new=False)
        new = self._query(node.unique_id, new=True) if changed else old
        if changed and self.code.new_sql(node.unique_id) == self.code.old_sql(node.unique_id):
            raise Unsure("its code changed where its compiled SQL did not")
        parents = {
            name: self.reaching[uid]
            for name, uid in new.reads.items()
            if uid is not None and uid in self.reaching
        }
        before = (old, self._columns(old, now=False))
        return analyse(new, self._columns(new, now=True), parents, self.names.dialect, before)

    def _from_flow(
        self, node: Node, flow: Flow, changed: bool, parents: Mapping[str, Reaching]
    ) -> Decision:
        self.flows[node.unique_id] = flow
        if flow.whole is not None:
            self.reaching[node.unique_id] = Reaching(node.name, whole=flow.whole)
            return self._made(node, True, "whole", flow.whole, (), changed)
        removed = set(flow.before or ()) - set(flow.outputs)
        touched = tuple(sorted(flow.reached | removed))
        if touched:
            self.reaching[node.unique_id] = Reaching(node.name, frozenset(touched))
        added = set(flow.outputs) - set(flow.before or flow.outputs)
        if not touched:
            kind: Kind = "equivalent" if changed else "unreached"
            reason = "the same query" if changed else _unread(parents)
        elif not removed and set(touched) <= added:
            kind, reason = "additive", f"new columns: {', '.join(touched)}"
        else:
            kind, reason = "columns", f"changed columns: {', '.join(touched)}"
        return self._made(node, changed or bool(touched), kind, reason, touched, changed)

    def _made(
        self, node: Node, build: bool, kind: Kind, reason: str, columns: tuple[str, ...], own: bool
    ) -> Decision:
        if node.ephemeral:  # no relation: its readers decide through it
            if build:
                reason = f"ephemeral, read through by its children ({reason})"
            return Decision(node.unique_id, False, "ephemeral", reason, columns, own)
        return Decision(node.unique_id, build, kind, reason, columns, own)

    def _unreached(self, node: Node) -> str:
        return "none of what it reads was rebuilt with a change it can see"


NOBODY = Node("", "", "")


def unreadable(node: Node, changed: bool) -> str | None:
    """Why what a node holds is not its SQL's select alone, or None."""
    if node.resource_type != "model":
        return f"a {node.resource_type}: built whenever what it reads changes"
    if node.language != "sql":
        return f"a {node.language} model: its code is not SQL"
    if node.materialized not in SQL_MATERIALIZATIONS:
        return f"materialized as {node.materialized}: what it holds is not only its SQL"
    if changed and node.incremental_branch:
        return "an incremental model's change: its full-refresh branch is not compared"
    return None


def _unread(parents: Mapping[str, Reaching]) -> str:
    said = "; ".join(
        f"{p.label}: {', '.join(sorted(p.columns))}" for p in parents.values() if p.columns
    )
    return f"it reads none of the changed columns ({said})"


def waves(nodes: Mapping[str, Node], changes: Iterable[str]) -> list[list[str]]:
    """The changes and their descendants, by depth: every parent of a wave's node
    that is among them is in an earlier wave."""
    children: dict[str, list[str]] = {}
    for node in nodes.values():
        for parent in node.parents:
            children.setdefault(parent, []).append(node.unique_id)
    reached: set[str] = set()
    pending = [uid for uid in changes if uid in nodes]
    while pending:
        uid = pending.pop()
        if uid not in reached:
            reached.add(uid)
            pending += children.get(uid, [])
    waiting = {uid: sum(1 for p in set(nodes[uid].parents) if p in reached) for uid in reached}
    wave = sorted(uid for uid, count in waiting.items() if count == 0)
    found = []
    while wave:
        found.append(wave)
        following = set()
        for uid in wave:
            for child in set(children.get(uid, [])):
                waiting[child] -= 1
                if waiting[child] == 0:
                    following.add(child)
        wave = sorted(following)
    return found


def decide(
    nodes: Mapping[str, Node],
    changes: Mapping[str, str | None],
    code: Code,
    names: Names,
    dropped: Callable[[set[str]], Mapping[str, str]] | None = None,
) -> list[Decision]:
    """Every change and descendant of it, decided. `nodes`: the manifest's (models,
    seeds, snapshots, sources); `changes`: dbt's state:modified, each with why it
    changes whole (None: its SQL changed, and is compared); `code`: where SQL and
    columns are read; `names`: which node each relation holds; `dropped`: the views
    the warehouse drops with the relations built, each with the relation (PostgreSQL,
    Redshift), built too."""
    decided = [
        d
        for d in Walk(nodes, changes, code, names).run()
        if nodes[d.unique_id].resource_type != "source"
    ]
    if dropped is None:
        return decided
    built = {d.unique_id for d in decided if d.build}
    views = dropped(built)
    return [
        Decision(d.unique_id, True, d.kind, f"a view dropped with {views[d.unique_id]}")
        if d.unique_id in views and not d.build
        else d
        for d in decided
    ]
