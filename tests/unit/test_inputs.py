"""What a parse reads besides the project's files (workspace/inputs.py): each change a
slim job must not miss is said, and nothing else is."""

from __future__ import annotations

from pathlib import Path

from dbt_runner.workspace.inputs import changed_inputs, env_var_names, read_inputs

PROJECT = "name: p\nvars:\n  tier: 1\nmodels:\n  +schema: \"{{ env_var('SCHEMA_SUFFIX', '') }}\"\n"


def test_each_input_that_changed_is_named_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text(PROJECT)
    names = env_var_names(tmp_path, {"REGION": "eu"})
    assert names == ["REGION", "SCHEMA_SUFFIX"]  # dbt's record, and dbt_project.yml's own
    before = read_inputs(tmp_path, {"day": "mon"}, names, {"REGION": "eu"})

    assert (
        changed_inputs(before, read_inputs(tmp_path, {"day": "mon"}, names, {"REGION": "eu"}))
        is None
    )
    assert changed_inputs(
        before, read_inputs(tmp_path, {"day": "tue"}, names, {"REGION": "eu"})
    ) == ("the dbt vars (DBT_RUNNER_VARS, dbt_project.yml's vars)")
    moved = read_inputs(tmp_path, {"day": "mon"}, names, {"REGION": "us", "SCHEMA_SUFFIX": "x"})
    assert changed_inputs(before, moved) == "the environment variable(s) REGION, SCHEMA_SUFFIX"

    (tmp_path / "dbt_project.yml").write_text(PROJECT.replace("tier: 1", "tier: 2"))
    project_vars = read_inputs(tmp_path, {"day": "mon"}, names, {"REGION": "eu"})
    assert (
        changed_inputs(before, project_vars)
        == "the dbt vars (DBT_RUNNER_VARS, dbt_project.yml's vars)"
    )
    assert "eu" not in before.model_dump_json()  # digests, never a value
