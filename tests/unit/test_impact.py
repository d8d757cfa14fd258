"""The impact's parts that need no warehouse: the template's parameters, which models
are compared with which key, the findings as the report says them, the gate, and the
guard's time limit that stops a command without stopping the run."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest

from dbt_runner.engine.session import TimeLimitReached
from dbt_runner.impact.compare import Raw
from dbt_runner.impact.plan import Comparison, Relation, plan
from dbt_runner.impact.program import jinja_string, program
from dbt_runner.impact.verdict import gate, model_impact
from dbt_runner.report.impact import ContentDiff, ImpactInfo, ModelImpact
from dbt_runner.report.markdown import md_impact
from dbt_runner.run.guard import Guard

TEXT = jinja2.Environment(autoescape=False)  # noqa: S701 (Jinja for SQL, not HTML)


@pytest.mark.parametrize(
    "text", ['{"a": "it\'s"}', "back\\slash \\n", "ünïcode ✓", "%} {{ x }} {% if %}", ""]
)
def test_a_jinja_string_holds_any_text_exactly(text: str) -> None:
    rendered = TEXT.from_string("{{ " + jinja_string(text) + " }}").render()
    assert rendered == text


def test_the_program_carries_the_comparisons() -> None:
    comparison = Comparison(
        "model.p.o'rders",
        "o'rders",
        Relation("db", "pr_1", "o'rders"),
        Relation(None, "prod", "o'rders"),
        key=["id"],
    )
    source = program([comparison], examples=3)
    first = source.splitlines()[0]
    literal = first[len("{%- set work = fromjson(") : -len(") -%}")]
    work = json.loads(TEXT.from_string("{{ " + literal + " }}").render())
    assert work == {
        "examples": 3,
        "models": [
            {
                "id": "model.p.o'rders",
                "pr": {"database": "db", "schema": "pr_1", "identifier": "o'rders"},
                "production": {"database": None, "schema": "prod", "identifier": "o'rders"},
                "key": ["id"],
            }
        ],
    }
    assert "run_query" in source  # the template follows


def node(unique_id: str, checksum: str = "c", **fields: Any) -> Any:
    name = unique_id.rsplit(".", 1)[-1]
    return SimpleNamespace(
        unique_id=unique_id,
        name=name,
        database="db",
        schema="pr",
        alias=name,
        checksum=SimpleNamespace(checksum=checksum),
        meta=fields.get("meta", {}),
        config=SimpleNamespace(meta=fields.get("config_meta", {}), materialized="table"),
        constraints=fields.get("constraints", []),
        columns=fields.get("columns", {}),
    )


def data_test(attached: str, name: str, column: str | None = None, **kwargs: Any) -> Any:
    return SimpleNamespace(
        unique_id=f"test.p.{name}_{attached}_{column}",
        test_metadata=SimpleNamespace(name=name, kwargs=kwargs),
        attached_node=attached,
        column_name=column,
    )


def manifest(*nodes: Any) -> Any:
    return SimpleNamespace(nodes={n.unique_id: n for n in nodes})


def production(*ids: str, checksum: str = "c") -> dict[str, Any]:
    return {
        "nodes": {
            uid: {
                "name": uid.rsplit(".", 1)[-1],
                "schema": "prod",
                "checksum": {"checksum": checksum},
            }
            for uid in ids
        }
    }


def test_models_are_planned_edited_first_then_in_build_order_within_the_limit() -> None:
    nodes = [
        node("model.p.a"),
        node("model.p.b", checksum="new"),
        node("model.p.c"),
        node("model.p.d"),
    ]
    found = manifest(*nodes)
    comparisons, over = plan(
        found,
        production("model.p.a", "model.p.b", "model.p.c"),
        ["model.p.a", "model.p.b", "model.p.c", "model.p.d"],
        max_models=3,
    )
    assert [c.name for c in comparisons] == ["b", "d", "a"]  # b edited, d new, then a, c
    assert [(c.modified, str(c.production)) for c in comparisons] == [
        (True, "prod.b"),
        (True, "None"),
        (False, "prod.a"),
    ]
    assert [(m.name, m.status) for m in over] == [("c", "not_compared")]
    assert over[0].reason == "over the limit of 3 models (DBT_RUNNER_PR_IMPACT__MAX_MODELS)"


@pytest.mark.parametrize(
    ("fields", "tests", "key"),
    [
        ({"config_meta": {"primary_key": "id"}}, [], ["id"]),
        ({"meta": {"primary_key": ["a", "b"]}}, [], ["a", "b"]),
        ({"constraints": [SimpleNamespace(type="primary_key", columns=["k"])]}, [], ["k"]),
        (
            {"columns": {"k2": SimpleNamespace(constraints=[SimpleNamespace(type="primary_key")])}},
            [],
            ["k2"],
        ),
        ({}, [("unique", "id"), ("not_null", "id")], ["id"]),
        ({}, [("unique", "id")], None),  # unique alone may hold nulls: no key
        ({}, [("unique", "lower(id)"), ("not_null", "lower(id)")], None),  # an expression
    ],
)
def test_a_models_key(fields: dict[str, Any], tests: list[tuple[str, str]], key: Any) -> None:
    model = node("model.p.m", **fields)
    found = manifest(model, *(data_test("model.p.m", name, column) for name, column in tests))
    [comparison], _ = plan(found, production("model.p.m"), ["model.p.m"], max_models=5)
    assert (comparison.key or None) == key
    assert (comparison.no_key is None) == (key is not None)


def test_a_unique_combination_of_columns_is_a_key() -> None:
    model = node("model.p.m")
    combination = data_test(
        "model.p.m", "unique_combination_of_columns", combination_of_columns=["day", "shop"]
    )
    [comparison], _ = plan(manifest(model, combination), production(), ["model.p.m"], 5)
    assert comparison.key == ["day", "shop"]


def comparison(key: list[str] | None = None) -> Comparison:
    return Comparison(
        "model.p.m",
        "m",
        Relation(None, "pr", "m"),
        Relation(None, "prod", "m"),
        key=key or [],
        no_key=None if key else "no key: add tests",
    )


def test_findings_become_the_report_entry() -> None:
    data = {
        "id": "model.p.m",
        "production_columns": [["id", "integer"], ["name", "text"], ["gone", "text"]],
        "pr_columns": [["id", "integer"], ["name", "varchar"], ["new", "text"]],
        "key": ["id"],
        "compared": ["name"],
        "counts": [10, 9, 2, 1, 3, 3],
        "examples": [
            ["changed", "4"],
            ["only_in_production", "1"],
            ["only_in_production", "2"],
            ["only_in_pr", "11"],
        ],
    }
    impact = model_impact(comparison(["id"]), Raw(data, 0.5))
    assert impact.status == "compared"
    assert [c.name for c in impact.added] == ["new"] and [c.name for c in impact.removed] == [
        "gone"
    ]
    assert [(t.name, t.production, t.pr) for t in impact.type_changed] == [
        ("name", "text", "varchar")
    ]
    assert (impact.rows_difference, impact.rows_percent) == (-1, -10.0)
    assert impact.by_key is not None
    assert impact.by_key.changed_columns == {"name": 3}
    assert impact.by_key.examples == {
        "only_in_production": ["1", "2"],
        "only_in_pr": ["11"],
        "changed": ["4"],
    }
    assert impact.summary() == (
        "1 column(s) added, 1 column(s) removed, 1 type(s) changed, -1 rows (-10.0%), "
        "3 row(s) changed"
    )


def test_what_was_not_compared_says_why() -> None:
    counts_only = model_impact(
        comparison(), Raw({"id": "m", "production_columns": [], "pr_columns": [], "counts": [3, 3]})
    )
    assert (counts_only.by_key, counts_only.no_key) == (None, "no key: add tests")
    assert not counts_only.changes_data()
    keyed = model_impact(
        comparison(["id"]),
        Raw({"id": "m", "production_columns": [], "pr_columns": [], "counts": [3, 3]}),
    )
    assert keyed.no_key == "the key (id) is not in both relations"
    missing = model_impact(comparison(), Raw({"id": "m", "production_missing": True, "rows_pr": 4}))
    assert (missing.status, missing.rows_pr) == ("missing_in_production", 4)
    new = Comparison("model.p.n", "n", Relation(None, "pr", "n"), None)
    assert (
        model_impact(new, Raw({"id": "n", "production_missing": True, "rows_pr": 2})).status
        == "new"
    )
    slow = model_impact(comparison(), Raw(seconds=1.0, not_compared="took longer than 1 s"))
    assert (slow.status, slow.reason) == ("not_compared", "took longer than 1 s")
    assert model_impact(comparison(), None).reason == "the comparison did not begin"


def losing(name: str, production: int, pr: int) -> ModelImpact:
    return ModelImpact(
        unique_id=name, name=name, status="compared", rows_production=production, rows_pr=pr
    )


def test_the_gate_fails_only_on_a_loss_over_the_limit() -> None:
    models = [losing("a", 100, 95), losing("b", 100, 80), losing("c", 0, 0), losing("d", 10, 20)]
    assert gate(models, None) is None
    assert gate(models, 25) is None
    said = gate(models, 10)
    assert said is not None and "b -20.0%" in said and "a " not in said
    assert gate(models, 4) is not None and "a -5.0%, b -20.0%" in str(gate(models, 4))


def test_the_headline_names_the_biggest_changes() -> None:
    info = ImpactInfo(
        models=[
            losing("a", 100, 95),
            losing("b", 100, 80),
            losing("c", 5, 5),
            ModelImpact(unique_id="n", name="n", status="new", rows_pr=3),
        ]
    )
    assert info.headline() == (
        "3 model(s) compared, 2 changed, 1 by their row counts only, 1 new "
        "(b: -20 rows (-20.0%); a: -5 rows (-5.0%))"
    )
    # c has no key and its rows were not compared: shown, never "no difference"
    assert [m.name for m in info.changed()] == ["a", "b", "c", "n"]
    assert info.unchanged() == []
    assert info.models[2].by_key_text().endswith("not compared by key or content: counts only")


def test_a_time_limit_stops_the_command_but_not_the_run() -> None:
    guard = Guard(timeout_s=60)
    blocked = threading.Event()
    with guard.installed():
        timer = threading.Timer(0.2, guard.interrupt)
        timer.start()
        with pytest.raises(TimeLimitReached):
            blocked.wait(30)  # as dbt's main thread waits for its workers
        timer.join()
        assert guard.exit_code is None and guard.stopped() is None  # the run goes on


def test_no_difference_is_said_only_of_rows_compared() -> None:
    """Issue 29: a model without a key whose two rows both changed was "No difference";
    with every comparison stopped by the limits, "no data changed"."""
    counted = losing("c17", 2, 2)
    by_content = losing("c18", 2, 2)
    by_content.by_content = ContentDiff(columns=["a", "b"], only_in_production=2, only_in_pr=2)
    same = losing("c19", 2, 2)
    same.by_content = ContentDiff(columns=["a"], only_in_production=0, only_in_pr=0)
    info = ImpactInfo(models=[counted, by_content, same])
    assert [m.name for m in info.changed()] == ["c17", "c18"]
    assert [m.name for m in info.unchanged()] == ["c19"]
    assert by_content.summary() == "4 row(s) differ by content"
    assert "2 row(s) only in production; 2 row(s) only in the PR" in by_content.by_key_text()
    assert same.by_key_text().endswith("the same rows") and same.summary() == "no change"
    assert counted.summary() == "counts only: the same row count"
    assert "no data changed" not in info.headline()
    stopped = ImpactInfo(
        models=[
            ModelImpact(unique_id=f"m{i}", name=f"m{i}", status="not_compared") for i in range(3)
        ]
    )
    assert stopped.headline() == "0 model(s) compared, 3 not compared"
    markdown = "\n".join(md_impact(info))
    assert "No difference (rows compared by key or content): `c19`" in markdown
    assert "`c17`" not in markdown.split("No difference")[1]
