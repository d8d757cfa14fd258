"""What a parse reads besides the project's files: the dbt vars, and the environment
variables dbt recorded reading (`env_var()` in a model, a YAML file, dbt_project.yml).

dbt's `state:modified` compares the project's code, not these: a model whose SQL reads
a var or an environment variable that changed is not selected (dbt's "caveats to state
comparison"). So a baked parse and a kept state each record them, as digests (never a
value), and a run whose inputs differ does not take either for its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from dbt_runner.report.parts import Inputs

ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")


def digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def env_var_names(project_dir: Path, parsed: Iterable[str]) -> list[str]:
    """The variables a parse read: dbt's record of them (models, YAML), and those
    dbt_project.yml names (dbt keeps those apart, in its own parse check)."""
    project = (project_dir / "dbt_project.yml").read_text()
    return sorted(set(parsed) | set(ENV_VAR_CALL.findall(project)))


def env_digests(names: Iterable[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    return {name: (digest(environ[name]) if name in environ else None) for name in names}


def vars_digest(values: Any) -> str:
    return digest(json.dumps(values, sort_keys=True, default=str))


def read_inputs(
    project_dir: Path, dbt_vars: dict[str, Any], names: Iterable[str], environ: Mapping[str, str]
) -> Inputs:
    """This run's inputs: its vars with the project's own, the named variables' values.
    `project_dir`: the project (dbt_project.yml's vars); `dbt_vars`: the run's; `names`: the
    environment variables the parse read; `environ`: their values, as dbt sees them."""
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    both = {"run": dbt_vars, "project": project.get("vars") if isinstance(project, dict) else None}
    return Inputs(vars=vars_digest(both), env_vars=env_digests(names, environ))


def changed_inputs(before: Inputs, now: Inputs) -> str | None:
    """What differs between two runs' inputs, in words; None when nothing does."""
    changed = sorted(n for n, value in before.env_vars.items() if now.env_vars.get(n) != value)
    said = []
    if before.vars != now.vars:
        said.append("the dbt vars (DBT_RUNNER_VARS, dbt_project.yml's vars)")
    if changed:
        said.append(f"the environment variable(s) {', '.join(changed)}")
    return " and ".join(said) if said else None
