"""Which children a change can reach: the analysis on SQL, without dbt (reach/)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from sqlglot import exp

from dbt_runner.reach.decide import Decision, Node, decide, waves
from dbt_runner.reach.flow import Reaching, analyse
from dbt_runner.reach.sql import Key, Names, Unsure, node_name, read, relation_key

RAW = "source.p.raw.orders"


def rel(name: str) -> str:
    return f'"db"."s"."{name}"'


# A small project: a staging view over a source, and readers of every shape.
MODELS: dict[str, tuple[str, str]] = {
    "stg": ("view", f"select id, cust, amount, status from {rel('orders')}"),
    "m_amount": ("table", f"select id, amount * 2 as dbl from {rel('stg')}"),
    "m_status": ("table", f"select id, status from {rel('stg')} where status <> 'x'"),
    "m_star": ("table", f"with s as (select * from {rel('stg')}) select * from s"),
    "m_agg": ("table", f"select cust, sum(amount) as total from {rel('stg')} group by cust"),
    "m_join": (
        "table",
        f"select a.id, b.total from {rel('stg')} a join {rel('m_agg')} b on a.cust = b.cust",
    ),
    "m_eph": ("ephemeral", f"select id, amount from {rel('stg')}"),
    "m_from_eph": (
        "table",
        f"with __dbt__cte__m_eph as (select id, amount from {rel('stg')})\n"
        "select id, amount + 1 as a1 from __dbt__cte__m_eph",
    ),
    "m_dist": ("table", f"select distinct cust from {rel('stg')}"),
    "m_grand": ("table", f"select id, dbl from {rel('m_amount')}"),
    "m_union": (
        "table",
        f"select id, amount from {rel('stg')} union all select id, dbl from {rel('m_amount')}",
    ),
}
PARENTS = {
    "stg": [RAW],
    "m_join": ["model.p.stg", "model.p.m_agg"],
    "m_from_eph": ["model.p.m_eph"],
    "m_grand": ["model.p.m_amount"],
    "m_union": ["model.p.stg", "model.p.m_amount"],
}
COLUMNS = {
    "orders": ["id", "cust", "amount", "status"],
    "stg": ["id", "cust", "amount", "status"],
    "m_amount": ["id", "dbl"],
    "m_agg": ["cust", "total"],
}


def uid(name: str) -> str:
    return f"model.p.{name}"


def project() -> tuple[dict[str, Node], Names]:
    names = Names("postgres")
    names.add(RAW, rel("orders"))
    nodes = {RAW: Node(RAW, "orders", "source")}
    for name, (materialized, _) in MODELS.items():
        parents = tuple(PARENTS.get(name, [uid("stg")]))
        nodes[uid(name)] = Node(uid(name), name, "model", materialized, parents=parents)
        if materialized == "ephemeral":
            names.add_ephemeral(uid(name), name)
        else:
            names.add(uid(name), rel(name))
    return nodes, names


class Code:
    """SQL and columns from dicts; counts the warehouse listings."""

    def __init__(self, new: Mapping[str, str]) -> None:
        self.new = {uid(name): sql for name, sql in new.items()}
        self.listings: list[int] = []

    def old_sql(self, unique_id: str) -> str | None:
        return MODELS[unique_id.rsplit(".", 1)[-1]][1] if unique_id.startswith("model.") else None

    def new_sql(self, unique_id: str) -> str | None:
        return self.new.get(unique_id)

    def list_columns(self, tables: Sequence[exp.Table]) -> Mapping[Key, Sequence[str]]:
        self.listings.append(len(tables))
        return {relation_key(t): COLUMNS.get(t.name, []) for t in tables}


def decided(new_stg: str, why: str | None = None) -> dict[str, Decision]:
    nodes, names = project()
    changes: dict[str, str | None] = {uid("stg"): why}
    found = decide(nodes, changes, Code({"stg": new_stg}), names)
    return {d.unique_id.rsplit(".", 1)[-1]: d for d in found}


def built(decisions: dict[str, Decision]) -> set[str]:
    return {name for name, d in decisions.items() if d.build}


STG = MODELS["stg"][1]


def test_a_new_column_builds_only_what_selects_star() -> None:
    found = decided(STG.replace("status from", "status, 1 as extra from"))
    assert found["stg"].kind == "additive" and found["stg"].columns == ("extra",)
    assert built(found) == {"stg", "m_star"}
    assert found["m_star"].columns == ("extra",)
    assert "none of the changed columns" in found["m_amount"].reason


def test_a_changed_expression_builds_the_readers_of_that_column_and_theirs() -> None:
    found = decided(STG.replace("amount,", "amount * 100 as amount,"))
    assert found["stg"].kind == "columns" and found["stg"].columns == ("amount",)
    assert built(found) == {
        "stg", "m_amount", "m_star", "m_agg", "m_join", "m_from_eph", "m_grand", "m_union",
    }  # fmt: skip
    assert found["m_eph"].kind == "ephemeral" and not found["m_eph"].build
    assert found["m_join"].columns == ("total",)  # through m_agg's total, in its select
    assert not found["m_status"].build and not found["m_dist"].build


def test_a_changed_filter_builds_every_descendant() -> None:
    found = decided(STG + " where status <> 'void'")
    assert found["stg"].kind == "whole" and "WHERE" in found["stg"].reason
    assert built(found) == set(found) - {"m_eph"}


def test_a_changed_clause_is_whole_before_the_warehouse_is_asked() -> None:
    nodes, names = project()
    code = Code({"stg": STG + " where status <> 'void'"})
    decide(nodes, {uid("stg"): None}, code, names)
    assert code.listings == []  # every descendant reads a whole change: nothing to list
    code = Code({"stg": STG.replace("amount,", "amount + 1 as amount,")})
    decide(nodes, {uid("stg"): None}, code, names)
    assert code.listings  # a changed column: its readers' columns are read


def test_a_column_that_decides_rows_makes_its_readers_whole() -> None:
    found = decided(STG.replace("cust,", "upper(cust) as cust,"))
    assert found["m_agg"].kind == "whole" and "GROUP BY" in found["m_agg"].reason
    assert found["m_dist"].kind == "whole" and "DISTINCT" in found["m_dist"].reason
    assert found["m_join"].kind == "whole"  # a JOIN on it, and a whole parent
    assert not found["m_amount"].build and not found["m_grand"].build


def test_a_comment_is_no_change_and_a_change_of_config_is_whole() -> None:
    found = decided("-- reformatted\n" + STG.replace("select", "SELECT  "))
    assert found["stg"].kind == "equivalent" and built(found) == {"stg"}
    found = decided(STG, why="its config changed")
    assert built(found) == set(found) - {"m_eph"}
    assert found["m_amount"].reason == "it reads stg, whose rows may all change"


def test_a_removed_column_builds_its_readers_so_they_fail_loudly() -> None:
    found = decided(STG.replace(", status from", " from"))
    assert found["stg"].columns == ("status",)
    assert found["m_status"].build and found["m_status"].reason.startswith("unsure")
    assert found["m_star"].build  # its * no longer has the column
    assert not found["m_amount"].build


def test_ephemeral_models_are_decided_through() -> None:
    nodes, names = project()
    new = MODELS["m_eph"][1].replace("amount from", "amount * 3 as amount from")
    found = decide(nodes, {uid("m_eph"): None}, Code({"m_eph": new}), names)
    by_name = {d.unique_id.rsplit(".", 1)[-1]: d for d in found}
    assert by_name["m_eph"].kind == "ephemeral" and by_name["m_from_eph"].build
    assert by_name["m_from_eph"].columns == ("a1",)


def test_the_columns_are_listed_once_per_wave() -> None:
    nodes, names = project()
    code = Code({"stg": STG.replace("amount,", "amount * 100 as amount,")})
    decide(nodes, {uid("stg"): None}, code, names)
    assert len(code.listings) <= len(waves(nodes, [uid("stg")]))
    assert sum(code.listings) == len({"orders", "stg", "m_amount", "m_agg"})


def test_views_the_warehouse_drops_are_built() -> None:
    nodes, names = project()
    code = Code({"stg": STG.replace("status from", "status, 1 as extra from")})
    found = decide(nodes, {uid("stg"): None}, code, names, lambda b: {uid("m_dist"): "stg"})
    by_name = {d.unique_id.rsplit(".", 1)[-1]: d for d in found}
    assert by_name["m_dist"].build and by_name["m_dist"].reason == "a view dropped with stg"


# --- the rules on queries alone --------------------------------------------------------

A = node_name("model.p.a")


def flow_of(sql: str, old: str | None = None, changed: frozenset[str] = frozenset()) -> str:
    names = Names("duckdb")
    names.add("model.p.a", rel("a"))
    columns = {A: ["id", "x", "y"]}
    parents = {A: Reaching("a", changed)} if changed else {}
    before = (read(old, names), columns) if old else None
    found = analyse(read(sql, names), columns, parents, "duckdb", before)
    return found.whole or ",".join(sorted(found.reached)) or "-"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("select id, x from A", "select id, x, 1 as n from A", "n"),
        ("select id, x from A", "select id, x as z from A", "z"),
        ("select id, x from A", "select id, x + 1 as x from A", "x"),
        ("select id, x from A", "select distinct id, x from A", "its DISTINCT changed"),
        ("select id, x from A", "select distinct id, x from A", "its DISTINCT changed"),
        ("select id from A union all select x from A", "select id from A union select x from A",
         "its DISTINCT changed"),
        ("select id, x from A", "select id, x, count(*) as n from A",
         "an aggregate changed in a select without GROUP BY: the row count may"),
        ("select id, count(*) as n from A group by id",
         "select id, count(*) as n, max(x) as m from A group by id", "m"),
        ("select id, x from A", "select id, x, row_number() over () as r from A",
         "a window function changed"),
        ("select id, x from A", "select x, id from A", "its columns' order changed"),
        ("select id, x from A", "with f as (select id, x from A) select id, x from f", "-"),
        ("select id, x from A", "select s.id, s.x + 1 as x from (select id, x from A) as s",
         "x"),
        ("with f as (select id, x from A) select id, x from f",
         "with f as (select id, x from A where y > 0) select id, x from f", "its WHERE changed"),
        ("select id, max(x) as x from A group by id",
         "with f as (select id, max(x) as x from A group by id) select id, x from f",
         "its CTEs or subqueries changed"),
        ("select a1.id from A a1 join A a2 on a1.id = a2.id",
         "select a1.id from A a1 join A a2 on a1.x = a2.x", "its a JOIN changed"),
        ("select id, x from A limit 5", "select id, x from A limit 6", "its LIMIT changed"),
    ],
)  # fmt: skip
def test_own_changes(old: str, new: str, expected: str) -> None:
    assert flow_of(new.replace("A", rel("a")), old.replace("A", rel("a"))) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select id, y from A", "-"),
        ("select id, x * 2 as d from A", "d"),
        ("select id from A where x > 0", "a.x is in WHERE"),
        ("select id from A order by x limit 3", "a.x is in ORDER BY"),
        ("select y, max(x) as m from A group by y", "m"),
        ("select x, count(*) as n from A group by x", "a.x is in GROUP BY"),
        ("select id, sum(y) over (partition by x) as s from A",
         "a.x is in a window's PARTITION BY or ORDER BY"),
        ("select id, (select max(x) from A) as m from A", "a changed column is in a subquery"),
        ("select id, unnest([x]) as u from A", "a changed column feeds a function that makes rows"),
        ("select id from A where id in (select x from A)", "a changed column is in a subquery"),
    ],
)  # fmt: skip
def test_what_a_changed_column_does_to_a_reader(sql: str, expected: str) -> None:
    assert flow_of(sql.replace("A", rel("a")), changed=frozenset({"x"})) == expected


def test_what_cannot_be_read_is_unsure() -> None:
    names = Names("postgres")
    with pytest.raises(Unsure, match="parse"):
        read("select (", names)
    with pytest.raises(Unsure, match="not one query"):
        read("select 1; select 2", names)
    with pytest.raises(Unsure, match="unparsed"):
        read("vacuum analyse orders", names)
    query = read(f"select * from {rel('unlisted')}", names)
    with pytest.raises(Unsure, match=r"\*"):
        analyse(query, {}, {}, "postgres")
    names.add("model.p.one", rel("same"))
    names.add("model.p.two", rel("SAME"))
    with pytest.raises(Unsure, match="two nodes"):
        read(f"select 1 from {rel('same')}", names)


def test_relations_are_named_by_node_in_every_compilation() -> None:
    names = Names("postgres")
    names.add("model.p.a", '"dev"."ci_schema"."a"')
    names.add("model.p.a", '"dev"."prod"."a"')  # deferred to production's
    ci = read('select a.id from "dev"."ci_schema"."a" as a', names)
    prod = read('select a.id from "dev"."prod"."a" /* deferred */ as a', names)
    assert ci.same_as(prod) and ci.reads == {node_name("model.p.a"): "model.p.a"}
