"""Lint: the project's SQL through SQLFluff and its dbt templater, on the runner's own
manifest (no second parse of the project).

The project's own `.sqlfluff` (or other SQLFluff config) is used when present; the
runner always lints with the dbt templater (on the run's manifest: SQLFluff's jinja
templater would not know the project's macros), points it at the run's project folder,
profile and target, and sets the dialect of the profile's adapter when the config names
none. Files the project's `.sqlfluffignore` leaves out are not linted, nor reported.
Without one, DEFAULT_CONFIG applies (docs/jobs.md, "SQL lint"). A slim job lints only the
files of the nodes it changed; a full job every model and snapshot of the project.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.copies import working_copy
from dbt_runner.engine.nodes import clean
from dbt_runner.report.github import github_annotations
from dbt_runner.report.model import LintFinding, LintInfo, PhaseStatus
from dbt_runner.workspace.project import repository_prefix

if TYPE_CHECKING:
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.state.store import Baseline
    from dbt_runner.workspace.project import Project

log = logging.getLogger(__name__)

# The adapter's SQLFluff dialect.
DIALECTS = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "redshift": "redshift",
    "bigquery": "bigquery",
}
CONFIG_FILES = (".sqlfluff", "setup.cfg", "tox.ini", "pyproject.toml")
# The documented default, for projects without a SQLFluff config of their own.
DEFAULT_CONFIG = """[sqlfluff]
templater = dbt
rules = core
max_line_length = 100

[sqlfluff:indentation]
tab_space_size = 4

[sqlfluff:rules:capitalisation.keywords]
capitalisation_policy = lower

[sqlfluff:rules:capitalisation.identifiers]
extended_capitalisation_policy = lower

[sqlfluff:rules:capitalisation.functions]
extended_capitalisation_policy = lower
"""
LINTED_TYPES = ("model", "snapshot")


def has_own_config(project_dir: Path) -> bool:
    """Whether the project configures SQLFluff itself (a .sqlfluff, or a [sqlfluff]
    section in setup.cfg, tox.ini or pyproject.toml)."""
    for name in CONFIG_FILES:
        path = project_dir / name
        if path.is_file() and (name == ".sqlfluff" or "sqlfluff" in path.read_text()):
            return True
    return False


def runner_config(
    folder: Path, project_dir: Path, profiles_dir: Path, target: str | None, adapter: str | None
) -> Path:
    """The config the runner adds: where the dbt templater finds the project, profile
    and target; the dialect; and the default rules when the project has none.
    `folder`: where it is written; `project_dir`, `profiles_dir`, `target`: the run's;
    `adapter`: the profile's (its dialect)."""
    own = has_own_config(project_dir)
    lines = [] if own else [DEFAULT_CONFIG]
    lines += ["[sqlfluff:templater:dbt]", f"project_dir = {project_dir}"]
    lines += [f"profiles_dir = {profiles_dir}"] + ([f"target = {target}"] if target else [])
    path = folder / "sqlfluff.cfg"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def project_files(manifest: Any, project: str, selected: set[str] | None = None) -> list[str]:
    """The SQL files of the project's own models and snapshots (or of `selected`)."""
    files = set()
    for unique_id, node in manifest.nodes.items():
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        in_scope = selected is None or unique_id in selected
        sql = node.original_file_path.endswith(".sql")
        if kind in LINTED_TYPES and node.package_name == project and in_scope and sql:
            files.add(node.original_file_path)
    return sorted(files)


def lint_copy(manifest: Any) -> Any:
    """The manifest as the templater may change it: SQLFluff's dbt templater compiles
    nodes in place and sets a node's raw code to its file's text (a snapshot's with its
    `{% snapshot %}` block), which would break the build that reuses the manifest."""
    return working_copy(manifest)


def lint(
    manifest: Any, files: list[str], project_dir: Path, extra_config: Path, adapter: str | None
) -> LintInfo:
    """Lint `files` (relative to `project_dir`, the current folder) with the manifest the
    run parsed (on a copy: the templater changes what it compiles); every finding, the
    files SQLFluff linted (not those its ignore files leave out), and the config and
    dialect used.
    `manifest`: the run's parse; `extra_config`: the runner's config (runner_config);
    `adapter`: the profile's."""
    from sqlfluff.core import Linter

    config = fluff_config(project_dir, extra_config, adapter)
    templater = config.get("templater_obj")
    # The runner's own parse: the templater would otherwise parse the project again.
    templater.__dict__["dbt_manifest"] = lint_copy(manifest)
    result = Linter(config=config).lint_paths(tuple(files), processes=1) if files else None
    records: list[Any] = result.as_records() if result is not None else []
    findings = [
        LintFinding(
            file=str(record["filepath"]),
            line=int(violation.get("start_line_no") or 1),
            column=int(violation.get("start_line_pos") or 1),
            rule=str(violation["code"]),
            name=str(violation.get("name") or violation["code"]),
            message=str(violation["description"]),
        )
        for record in records
        for violation in record["violations"]
    ]
    source = ".sqlfluff of the project" if has_own_config(project_dir) else "dbt-runner's default"
    return LintInfo(
        files=sorted(str(record["filepath"]) for record in records),
        findings=findings,
        dialect=str(config.get("dialect")),
        config=source,
    )


def fluff_config(project_dir: Path, extra_config: Path, adapter: str | None) -> Any:
    """The project's SQLFluff config (or the default) with the dbt templater, whatever
    the config says of it (the run's manifest is dbt's), and the profile's dialect when
    the config names none."""
    from sqlfluff.core import FluffConfig

    overrides: dict[str, Any] = {"templater": "dbt"}
    config = FluffConfig.from_path(
        str(project_dir),
        extra_config_path=str(extra_config),
        overrides=overrides,
        require_dialect=False,
    )
    if config.get("dialect"):
        return config
    overrides["dialect"] = DIALECTS.get(adapter or "", "ansi")
    return FluffConfig.from_path(
        str(project_dir), extra_config_path=str(extra_config), overrides=overrides
    )


# The lint verb: the lint phase alone, for a developer's machine; findings fail it.
LINT_PRESET = {"job": "custom", "phases": "deps,lint", "advisory_phases": ""}


def lint_scope(baseline: Baseline | None) -> list[str]:
    """What the lint phase lints, as its command line says: the changed nodes' files in
    a slim job, else every model and snapshot."""
    if baseline is not None:
        return ["--select", "state:modified", "--state", str(baseline.dir)]
    return ["--select", "the project's models and snapshots"]


def lint_phase(
    session: DbtSession, project: Project, baseline: Baseline | None, scratch: Path
) -> tuple[PhaseStatus, str, LintInfo | None]:
    """The lint phase: SQLFluff on the files in scope, with the run's manifest. Its
    status, what it says, and the findings.
    `session`: dbt (its manifest); `project`: the project linted; `baseline`: a slim job's
    state (then only what changed); `scratch`: a folder for the runner's config."""
    selected = None
    if baseline is not None:  # a slim job: only what changed
        changed = ["build", "--select", "state:modified", "--state", str(baseline.dir)]
        selected = session.selected(changed)
    invocation = session.invocation
    try:
        files = project_files(session.manifest, project.name, selected)
        config = runner_config(
            scratch, project.dir, invocation.profiles_dir, invocation.target, session.adapter
        )
        info = lint(session.manifest, files, project.dir, config, session.adapter)
    except Exception as exc:  # SQLFluff's own errors: a config it cannot read, ...
        return "error", clean(str(exc)), None
    info.prefix = repository_prefix(project.source_dir)
    if os.environ.get("GITHUB_ACTIONS") == "true" and info.findings:
        print("\n".join(github_annotations(info)), flush=True)
    found = f"{len(info.findings)} finding(s) in {len(info.files)} file(s) ({info.config})"
    return ("failed" if info.findings else "success"), found, info
