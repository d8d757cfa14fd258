"""The shape of the package: small functions, a short pipeline, no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

PACKAGE = ROOT / "entrypoint"
MAX_FUNCTION_LINES = 60
MAX_PIPELINE_LINES = 320  # until run/ is split by stage (issue 21)


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_the_pipeline_reads_at_once() -> None:
    lines = len((PACKAGE / "pipeline.py").read_text().splitlines())
    assert lines < MAX_PIPELINE_LINES


def top_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that `name` imports when it is itself imported (not in
    functions, not under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return {module for module in found if module in known and module != name}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in `graph`, if there is any."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_no_import_circle() -> None:
    known = modules()
    graph = {name: top_level_imports(name, path, set(known)) for name, path in known.items()}
    assert graph["entrypoint.pipeline"], "the scan found no imports: it would pass vacuously"
    assert cycle(graph) is None
    assert cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # and the check can fail


def test_passthrough_does_not_depend_on_the_pipeline() -> None:
    known = modules()
    imports = top_level_imports(
        "entrypoint.passthrough", known["entrypoint.passthrough"], set(known)
    )
    assert "entrypoint.pipeline" not in imports
