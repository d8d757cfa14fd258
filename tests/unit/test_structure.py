"""The shape of the package: folders that show the data path, layers that only import
downwards, no import circle, and modules, classes and functions that read at once.
Every check has a self-test that it can fail."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

SOURCE = ROOT / "entrypoint"
PACKAGE = SOURCE / "dbt_runner"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200
MAX_FUNCTION_LINES = 50
# The data path's folders, lowest first. A folder imports only from its own and lower
# ones (and from the package's top-level helpers: errors, logs, versions, aws, process).
RANK = (
    "storage",
    "config",
    "report",
    "engine",
    "workspace",
    "state",
    "reach",
    "impact",
    "outputs",
    "remote",
    "jobs",
    "run",
    "cli",
)
FOLDERS = {
    "reach",
    "remote",
    "cli",
    "config",
    "workspace",
    "engine",
    "jobs",
    "state",
    "impact",
    "run",
    "report",
    "outputs",
    "storage",
}


def modules(root: Path = SOURCE) -> dict[str, Path]:
    found = {}
    for path in (root / "dbt_runner").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def folder_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FOLDERS) else None


def top_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that `name` imports at its top level, those under
    TYPE_CHECKING included (a circle a type checker sees is one a reader sees); not
    those inside functions (deferred for start-up time)."""
    found: set[str] = set()
    for node in module_level(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return {module for module in found if module in known and module != name}


def module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A module's statements, and those of its `if` blocks (TYPE_CHECKING's)."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from module_level(node.body)
            yield from module_level(node.orelse)


def all_imports(path: Path) -> set[str]:
    """Every dbt_runner module a file imports, wherever (functions, TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {module for module in found if module.startswith("dbt_runner.")}


def layering_violations(imports: dict[str, set[str]]) -> list[str]:
    """Imports of a folder ranked higher than the importer's: `module -> imported`."""
    wrong = []
    for module, imported in sorted(imports.items()):
        folder = folder_of(module)
        if folder not in RANK:
            continue
        for other in sorted(imported):
            other_folder = folder_of(other)
            if other_folder in RANK and RANK.index(other_folder) > RANK.index(folder):
                wrong.append(f"{module} -> {other}")
    return wrong


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


def definitions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node


def too_long(source: str, name: str) -> list[str]:
    """Modules, classes and functions over their limits, in `source`."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{name}: {lines} lines")
    for node in definitions(ast.parse(source)):
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
        if length > limit:
            found.append(f"{name}.{node.name}: {length} lines")
    return found


def test_the_folders_are_the_data_path() -> None:
    present = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert present == FOLDERS == set(RANK)


def test_lower_folders_import_nothing_from_higher_ones() -> None:
    imports = {name: all_imports(path) for name, path in modules().items()}
    assert any(imports.values()), "the scan found no imports: it would pass vacuously"
    assert layering_violations(imports) == []
    # The check can fail: a report module that imports the pipeline, a job the sequence.
    bad = {
        "dbt_runner.report.model": {"dbt_runner.run.pipeline"},
        "dbt_runner.jobs.base": {"dbt_runner.run.sequence", "dbt_runner.state.lookup"},
    }
    assert layering_violations(bad) == [
        "dbt_runner.jobs.base -> dbt_runner.run.sequence",
        "dbt_runner.report.model -> dbt_runner.run.pipeline",
    ]


def test_modules_classes_and_functions_read_at_once() -> None:
    long = [
        problem for name, path in modules().items() for problem in too_long(path.read_text(), name)
    ]
    assert long == []
    # The check can fail: a function of 51 lines, a class of 201, a module of 401.
    body = "\n".join(f"    x{i} = {i}" for i in range(50))
    assert too_long(f"def f():\n{body}\n", "m") == ["m.f: 51 lines"]
    assert too_long("class C:\n" + "    x = 1\n" * 200, "m") == ["m.C: 201 lines"]
    assert too_long("x = 1\n" * 401, "m") == ["m: 401 lines"]


def test_no_import_circle() -> None:
    known = modules()
    graph = {name: top_level_imports(name, path, set(known)) for name, path in known.items()}
    assert graph["dbt_runner.run.pipeline"], "the scan found no imports: it would pass vacuously"
    assert cycle(graph) is None
    assert cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # and the check can fail
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from m.b import x\n"
    assert [ast.unparse(n) for n in module_level(ast.parse(typed).body)][-1] == "from m.b import x"


def test_dbt_is_called_in_one_place() -> None:
    """The engine is the dbtRunner boundary: nothing else imports dbt's runner."""
    callers = sorted(
        name
        for name, path in modules().items()
        if "dbtRunner" in path.read_text() and folder_of(name) != "engine"
    )
    assert callers == []


def undocumented_parameters(source: str, name: str) -> list[str]:
    """Public functions with more than three parameters whose docstring does not name
    each of them: `module.function: parameters`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith("_"):
            continue
        arguments = node.args
        names = [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
        names = [n for n in names if n not in ("self", "cls")]
        if len(names) <= 3:
            continue
        doc = ast.get_docstring(node) or ""
        missing = [n for n in names if f"`{n}`" not in doc and f"{n}:" not in doc]
        if missing:
            found.append(f"{name}.{node.name}: {', '.join(missing)}")
    return found


def test_functions_of_more_than_three_parameters_say_what_each_is() -> None:
    found = [
        problem
        for name, path in modules().items()
        for problem in undocumented_parameters(path.read_text(), name)
    ]
    assert found == []
    # The check can fail: four parameters, one of them unsaid.
    source = 'def f(a, b, c, d):\n    """`a`, `b` and `c`: what they are."""\n'
    assert undocumented_parameters(source, "m") == ["m.f: d"]
