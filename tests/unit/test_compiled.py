"""The compiled SQL a state keeps for the next slim job's children step (compiled.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from dbt_runner.state.compiled import COMPILED, compiled_from, kept_compiled, read_compiled

DBT, ADAPTER = "1.11.16", "duckdb"
MACROS = {
    "macro.p.cents": {"macro_sql": "{{ x }} / 100", "depends_on": {"macros": ["macro.p.round"]}},
    "macro.p.round": {"macro_sql": "round({{ x }})", "depends_on": {"macros": []}},
}


def model(checksum: str, sql: str | None, parents: tuple[str, ...] = ()) -> dict[str, Any]:
    node: dict[str, Any] = {
        "resource_type": "model",
        "checksum": {"checksum": checksum},
        "relation_name": f'"db"."main"."{checksum}"',
        "depends_on": {"nodes": list(parents), "macros": ["macro.p.cents"]},
    }
    if sql is not None:
        node |= {"compiled": True, "compiled_code": sql}
    return node


def manifest(tmp_path: Path, nodes: dict[str, Any], macros: dict[str, Any] = MACROS) -> Path:
    path = tmp_path / "manifest.json"
    metadata = {"dbt_version": DBT, "adapter_type": ADAPTER}
    path.write_bytes(orjson.dumps({"metadata": metadata, "nodes": nodes, "macros": macros}))
    return path


def kept(path: Path, previous: bytes | None, dbt: str = DBT) -> dict[str, Any]:
    return orjson.loads(kept_compiled(path, previous, dbt, ADAPTER) or b"")["nodes"]  # type: ignore[no-any-return]


def test_what_a_run_did_not_compile_comes_from_the_state_before_when_its_inputs_hold(
    tmp_path: Path,
) -> None:
    before = {"model.p.a": model("a1", "select 1"), "model.p.b": model("b1", "b")}
    previous = kept_compiled(manifest(tmp_path, before), None, DBT, ADAPTER)
    nodes = {
        "model.p.a": model("a1", None),  # skipped by a slim job, nothing changed
        "model.p.b": model("b2", None),  # its code changed, yet not compiled: unknown
        "model.p.c": model("c1", "select 3"),  # built
        "seed.p.s": {"resource_type": "seed", "checksum": {"checksum": "s"}},
    }
    found = kept(manifest(tmp_path, nodes), previous)
    assert {uid: entry["sql"] for uid, entry in found.items()} == {
        "model.p.a": "select 1",
        "model.p.c": "select 3",
    }
    assert "model.p.a" not in kept(manifest(tmp_path, nodes), previous, "1.10.0")  # another dbt


def test_sql_built_from_other_macros_or_relations_is_not_carried_over(tmp_path: Path) -> None:
    """A retry's manifest lacks the SQL of what the run it completes built: a node whose
    code is unchanged but whose macro (or a parent's relation) changed was built with
    other SQL than the state before kept."""
    before = {"model.p.p": model("p1", "p"), "model.p.a": model("a1", "select 1", ("model.p.p",))}
    previous = kept_compiled(manifest(tmp_path, before), None, DBT, ADAPTER)
    unchanged = {"model.p.p": model("p1", None), "model.p.a": model("a1", None, ("model.p.p",))}
    assert "model.p.a" in kept(manifest(tmp_path, unchanged), previous)

    edited = MACROS | {"macro.p.round": {"macro_sql": "floor({{ x }})", "depends_on": {}}}
    assert "model.p.a" not in kept(manifest(tmp_path, unchanged, edited), previous)
    moved = dict(unchanged)
    moved["model.p.p"] = model("p1", None) | {"relation_name": '"db"."other"."p1"'}
    assert "model.p.a" not in kept(manifest(tmp_path, moved), previous)
    a, p = unchanged["model.p.a"], moved["model.p.p"]
    assert compiled_from(a, {"nodes": unchanged}) != compiled_from(a, {"nodes": {"model.p.p": p}})


def test_a_state_is_read_only_by_the_dbt_and_adapter_that_compiled_it(tmp_path: Path) -> None:
    nodes = {"model.p.a": model("a1", "select 1")}
    (tmp_path / COMPILED).write_bytes(
        kept_compiled(manifest(tmp_path, nodes), None, DBT, ADAPTER) or b""
    )
    sql = {
        uid: entry["sql"] for uid, entry in (read_compiled(tmp_path, DBT, ADAPTER) or {}).items()
    }
    assert sql == {"model.p.a": "select 1"}
    assert read_compiled(tmp_path, "1.10.0", ADAPTER) is None
    assert read_compiled(tmp_path, DBT, "postgres") is None
    (tmp_path / COMPILED).write_text("{")
    assert read_compiled(tmp_path, DBT, ADAPTER) is None  # unreadable: every child built
    (tmp_path / COMPILED).unlink()  # a state kept before compiled.json: its manifest's
    sql = {
        uid: entry["sql"] for uid, entry in (read_compiled(tmp_path, DBT, ADAPTER) or {}).items()
    }
    assert sql == {"model.p.a": "select 1"}
    assert read_compiled(tmp_path, "1.10.0", ADAPTER) is None
