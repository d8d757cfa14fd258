"""The compiled SQL a state keeps (compiled.json): what each model's relation was built
with, for the next slim job to compare a change with (reach/).

A slim job's manifest holds compiled SQL only for the nodes it built; every other
model's comes over from the state before, when everything its SQL is compiled from is
unchanged: its code, its own and its parents' relations, and every macro it calls
(a node built since by a run whose manifest lacks its SQL, a retry's, is not carried
over with SQL it was not built with). Written with the dbt version and adapter that
compiled it: another's SQL is not compared.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

COMPILED = "compiled.json"
KINDS = ("model",)


def kept_compiled(
    manifest_path: Path, previous: bytes | None, dbt_version: str | None, adapter: str | None
) -> bytes | None:
    """compiled.json for a state promoted from the manifest at `manifest_path`, with
    `previous` (the last state's compiled.json) filling in what this run did not
    compile. `dbt_version`, `adapter`: this run's."""
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    earlier = _nodes(previous, dbt_version, adapter)
    nodes: dict[str, dict[str, str]] = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") not in KINDS:
            continue
        inputs = compiled_from(node, manifest)
        if node.get("compiled") and node.get("compiled_code") is not None:
            nodes[unique_id] = {"inputs": inputs, "sql": node["compiled_code"]}
        elif earlier.get(unique_id, {}).get("inputs") == inputs:
            nodes[unique_id] = earlier[unique_id]
    document = {"dbt_version": dbt_version, "adapter": adapter, "nodes": nodes}
    return orjson.dumps(document)


def compiled_from(node: dict[str, Any], manifest: dict[str, Any]) -> str:
    """A digest of what a node's compiled SQL is made from (in `manifest`, dbt's JSON):
    its code's checksum, its relation, its parents' relations, and the SQL of every
    macro it calls, and of those they call."""
    macros, depends = manifest.get("macros", {}), node.get("depends_on") or {}
    called: set[str] = set()
    pending = list(depends.get("macros") or [])
    while pending:
        name = pending.pop()
        if name not in called:
            called.add(name)
            pending += (macros.get(name, {}).get("depends_on") or {}).get("macros") or []
    relations = [_relation(manifest, uid) for uid in sorted(depends.get("nodes") or [])]
    payload = [
        (node.get("checksum") or {}).get("checksum"),
        node.get("relation_name"),
        relations,
        [(name, macros.get(name, {}).get("macro_sql")) for name in sorted(called)],
    ]
    return hashlib.sha256(orjson.dumps(payload)).hexdigest()


def _relation(manifest: dict[str, Any], unique_id: str) -> str | None:
    found = manifest.get("nodes", {}).get(unique_id) or manifest.get("sources", {}).get(unique_id)
    return (found or {}).get("relation_name")


def _nodes(
    data: bytes | None, dbt_version: str | None, adapter: str | None
) -> dict[str, dict[str, str]]:
    """A compiled.json's nodes, when the same dbt and adapter compiled them."""
    if not data:
        return {}
    try:
        document: dict[str, Any] = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    if document.get("dbt_version") != dbt_version or document.get("adapter") != adapter:
        return {}
    nodes = document.get("nodes")
    return nodes if isinstance(nodes, dict) else {}


def read_compiled(
    folder: Path, dbt_version: str | None, adapter: str | None
) -> dict[str, dict[str, str]] | None:
    """The compiled SQL of the state fetched into `folder`: compiled.json's, or, for a
    state written before it, its manifest's (a full job's compiles every node). None
    when another dbt or adapter compiled it."""
    kept = folder / COMPILED
    if kept.is_file():
        data = kept.read_bytes()
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None  # unreadable: every descendant is built
        if document.get("dbt_version") != dbt_version or document.get("adapter") != adapter:
            return None
        return _nodes(data, dbt_version, adapter)
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    metadata = manifest.get("metadata", {})
    if metadata.get("dbt_version") != dbt_version or metadata.get("adapter_type") != adapter:
        return None
    return {
        uid: {"inputs": compiled_from(n, manifest), "sql": n["compiled_code"]}
        for uid, n in manifest.get("nodes", {}).items()
        if n.get("resource_type") in KINDS and n.get("compiled_code") is not None
    }
