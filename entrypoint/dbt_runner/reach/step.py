"""The children step of a slim job: which descendants of its changes to build, from
what dbt, the state and the warehouse say (decide.py decides).

dbt lists what changed against the state (`state:modified`, and which of it changed
beyond its SQL); dbt compiles the changed models as the build will; the state keeps
the SQL every relation was built with (state/compiled.py); the warehouse reports each
relation's columns. The result is the selection that replaces `state:modified+`:
`state:modified` and each descendant to build, by its fqn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlglot import exp

from dbt_runner.engine.columns import changed_nodes, compiled_now, list_columns
from dbt_runner.engine.kinds import config_value, kind_of
from dbt_runner.engine.previous import state_manifest
from dbt_runner.reach.decide import Decision, Node, decide
from dbt_runner.reach.sql import DIALECTS, Key, Names, relation_key
from dbt_runner.report.parts import ChildDecision, ReachInfo
from dbt_runner.state.compiled import read_compiled
from dbt_runner.state.touched import cascades, dropped_views, selector

if TYPE_CHECKING:
    from dbt_runner.engine.session import DbtSession

log = logging.getLogger(__name__)

BEYOND_SQL = (
    "a change beyond its SQL (its config, relation, docs or contract, a macro it calls, or new)"
)
GRAPH_TYPES = {"model", "seed", "snapshot"}


@dataclass
class Children:
    """What the step decided: the selection that replaces `state:modified+` (None:
    every descendant), each decision, and how long it took."""

    selection: list[str] | None
    info: ReachInfo
    decisions: list[ChildDecision] = field(default_factory=list)


def all_children(reason: str, started: float) -> Children:
    log.info("children: every descendant of the changes is built: %s", reason)
    info = ReachInfo(mode="all", reason=reason, seconds=round(time.monotonic() - started, 3))
    return Children(None, info)


def decide_children(
    session: DbtSession, state_dir: Path, state_args: list[str], dbt_version: str | None
) -> Children:
    """Which descendants of the changes against the state in `state_dir` to build.
    `session`: the run's dbt, parsed; `state_args`: --state and --defer as the build has
    them; `dbt_version`: this run's."""
    started = time.monotonic()
    adapter, manifest = session.adapter, session.manifest
    dialect = DIALECTS.get(adapter or "")
    if dialect is None or manifest is None:
        return all_children(f"no SQL dialect is known for the {adapter} adapter", started)
    old = read_compiled(state_dir, dbt_version, adapter)
    if old is None:
        return all_children("the state's SQL is unreadable or another dbt's or adapter's", started)
    changes = changed_nodes(session, ["--state", str(state_dir)])
    if changes is None:
        return all_children("dbt could not list the changes", started)
    nodes = graph_of(manifest)
    every, beyond = changes
    sql_only = sorted(u for u in every - beyond if u in nodes and nodes[u].resource_type == "model")
    new = compiled_now(session, _selectors(manifest, sql_only), state_args)
    if new is None:
        return all_children("the changed models did not compile", started)
    reasons = {u: (None if u in sql_only else BEYOND_SQL) for u in every if u in nodes}
    code = SessionCode(session, old, new)
    analysis = time.monotonic()
    try:
        decided = decide(nodes, reasons, code, names_of(manifest, state_dir, dialect),
                         _dropped(manifest, adapter))  # fmt: skip
    except RuntimeError as exc:  # the warehouse could not list columns
        return all_children(str(exc), started)
    analysis_s = time.monotonic() - analysis - code.listing_s
    return _chosen(manifest, decided, started, analysis_s)


def _chosen(manifest: Any, decided: list[Decision], started: float, analysis_s: float) -> Children:
    descendants = [d for d in decided if not d.changed and d.kind != "ephemeral"]
    built = [d.unique_id for d in descendants if d.build]
    info = ReachInfo(
        mode="affected",
        built=len(built),
        skipped=len(descendants) - len(built),
        seconds=round(time.monotonic() - started, 3),
        analysis_s=round(analysis_s, 3),
    )
    log.info(
        "children: %d descendant(s) of the changes built, %d left as they are (%.1f s)",
        info.built, info.skipped, info.seconds,
    )  # fmt: skip
    # Every descendant built: state:modified+ says it in one criterion (dbt matches
    # each fqn selector against every node).
    selection = ["state:modified", *_selectors(manifest, built)] if info.skipped else None
    return Children(selection, info, [_said(d) for d in decided])


def _said(decision: Decision) -> ChildDecision:
    return ChildDecision(
        node=decision.unique_id,
        decision="build" if decision.build else "skip",
        kind=decision.kind,
        reason=decision.reason,
        columns=list(decision.columns),
        changed=decision.changed,
    )


def _selectors(manifest: Any, unique_ids: Sequence[str]) -> list[str]:
    return [s for s in (selector(manifest, uid) for uid in unique_ids) if s]


def graph_of(manifest: Any) -> dict[str, Node]:
    """The manifest's models, seeds, snapshots and sources, as the walk reads them."""
    nodes: dict[str, Node] = {}
    for unique_id, node in manifest.nodes.items():
        kind = kind_of(node)
        if kind not in GRAPH_TYPES:
            continue
        language = str(getattr(node, "language", "sql") or "sql")
        raw = getattr(node, "raw_code", "") or ""
        nodes[unique_id] = Node(
            unique_id,
            node.name,
            kind,
            config_value(node, "materialized"),
            language.rsplit(".", 1)[-1].lower(),
            tuple(getattr(node.depends_on, "nodes", ())),
            "is_incremental" in raw,
        )
    for unique_id, source in manifest.sources.items():
        nodes[unique_id] = Node(unique_id, source.name, "source")
    return nodes


def names_of(manifest: Any, state_dir: Path, dialect: str) -> Names:
    """Which node each relation holds: this run's and the state's (deferred parents)."""
    names = Names(dialect)
    for unique_id, relation in _state_relations(state_dir):
        names.add(unique_id, relation)
    for unique_id, node in [*manifest.nodes.items(), *manifest.sources.items()]:
        if config_value(node, "materialized") == "ephemeral":
            for name in {node.name, getattr(node, "alias", None) or node.name}:
                names.add_ephemeral(unique_id, name)
        else:
            names.add(unique_id, getattr(node, "relation_name", None))
    return names


def _state_relations(state_dir: Path) -> list[tuple[str, str | None]]:
    """Each node's relation in the state: from the manifest dbt read for this run's
    commands, else from the file."""
    read = state_manifest(state_dir)
    if read is not None:
        found = [*read.nodes.items(), *read.sources.items()]
        return [(uid, getattr(node, "relation_name", None)) for uid, node in found]
    try:
        state = orjson.loads((state_dir / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    groups = (state.get("nodes") or {}, state.get("sources") or {})
    return [(uid, node.get("relation_name")) for group in groups for uid, node in group.items()]


def _dropped(manifest: Any, adapter: str | None) -> Any:
    """The views the warehouse drops with the relations built, each with one of them."""
    if not cascades(adapter):
        return None

    def dropped(built: set[str]) -> dict[str, str]:
        views: dict[str, str] = {}
        for unique_id in sorted(built):
            name = manifest.nodes[unique_id].name if unique_id in manifest.nodes else unique_id
            for view in dropped_views(
                [unique_id], manifest.child_map, manifest.nodes, adapter or ""
            ):
                views.setdefault(view, name)
        return views

    return dropped


class SessionCode:
    """The SQL and columns the walk reads: the state's SQL, dbt's compile of the
    changes, the warehouse's columns through dbt."""

    def __init__(
        self, session: DbtSession, old: Mapping[str, Mapping[str, str]], new: Mapping[str, str]
    ) -> None:
        self.session, self.old, self.new = session, old, new
        self.listing_s = 0.0  # time spent in the warehouse, not deciding

    def old_sql(self, unique_id: str) -> str | None:
        entry = self.old.get(unique_id)
        return entry.get("sql") if entry else None

    def new_sql(self, unique_id: str) -> str | None:
        return self.new.get(unique_id)

    def list_columns(self, tables: Sequence[exp.Table]) -> Mapping[Key, Sequence[str]]:
        started = time.monotonic()
        places = [(t.catalog, t.db, t.name) for t in tables]
        listed = list_columns(self.session, places)
        self.listing_s += time.monotonic() - started
        return {relation_key(t): listed[place] for t, place in zip(tables, places, strict=True)}
