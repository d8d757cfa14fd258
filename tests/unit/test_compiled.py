"""The compiled SQL a state keeps for the next slim job's children step (compiled.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from dbt_runner.state.compiled import COMPILED, kept_compiled, read_compiled

DBT, ADAPTER = "1.11.16", "duckdb"


def model(checksum: str, sql: str | None) -> dict[str, Any]:
    node: dict[str, Any] = {"resource_type": "model", "checksum": {"checksum": checksum}}
    if sql is not None:
        node |= {"compiled": True, "compiled_code": sql}
    return node


def manifest(tmp_path: Path, nodes: dict[str, Any]) -> Path:
    path = tmp_path / "manifest.json"
    metadata = {"dbt_version": DBT, "adapter_type": ADAPTER}
    path.write_bytes(orjson.dumps({"metadata": metadata, "nodes": nodes}))
    return path


def test_what_a_run_did_not_compile_comes_from_the_state_before_when_unchanged(
    tmp_path: Path,
) -> None:
    previous = kept_compiled(
        manifest(tmp_path, {"model.p.a": model("a1", "select 1"), "model.p.b": model("b1", "b")}),
        None, DBT, ADAPTER,
    )  # fmt: skip
    nodes = {
        "model.p.a": model("a1", None),  # skipped by a slim job, its code unchanged
        "model.p.b": model("b2", None),  # its code changed, yet not compiled: unknown
        "model.p.c": model("c1", "select 3"),  # built
        "seed.p.s": {"resource_type": "seed", "checksum": {"checksum": "s"}},
    }
    kept = orjson.loads(kept_compiled(manifest(tmp_path, nodes), previous, DBT, ADAPTER) or b"")
    assert kept["nodes"] == {
        "model.p.a": {"checksum": "a1", "sql": "select 1"},
        "model.p.c": {"checksum": "c1", "sql": "select 3"},
    }
    other = kept_compiled(manifest(tmp_path, nodes), previous, "1.10.0", ADAPTER)
    assert "model.p.a" not in orjson.loads(other or b"")["nodes"]  # another dbt's SQL


def test_a_state_is_read_only_by_the_dbt_and_adapter_that_compiled_it(tmp_path: Path) -> None:
    nodes = {"model.p.a": model("a1", "select 1")}
    (tmp_path / COMPILED).write_bytes(
        kept_compiled(manifest(tmp_path, nodes), None, DBT, ADAPTER) or b""
    )
    assert read_compiled(tmp_path, DBT, ADAPTER) == {
        "model.p.a": {"checksum": "a1", "sql": "select 1"}
    }
    assert read_compiled(tmp_path, "1.10.0", ADAPTER) is None
    assert read_compiled(tmp_path, DBT, "postgres") is None
    (tmp_path / COMPILED).write_text("{")
    assert read_compiled(tmp_path, DBT, ADAPTER) is None  # unreadable: every child built
    (tmp_path / COMPILED).unlink()  # a state kept before compiled.json: its manifest's
    assert read_compiled(tmp_path, DBT, ADAPTER) == {
        "model.p.a": {"checksum": "a1", "sql": "select 1"}
    }
    assert read_compiled(tmp_path, "1.10.0", ADAPTER) is None
