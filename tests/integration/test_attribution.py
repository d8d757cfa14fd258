"""Owners and Redshift query groups, on a manifest real dbt parsed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from dbt.adapters.redshift.impl import RedshiftAdapter
from dbt.cli.main import dbtRunner

from dbt_runner.engine.attribution import owner_of, tag_query_groups

SCHEMA_YML = """
groups:
  - name: finance
    owner: {email: finance@example.com}
models:
  - name: revenue
    config: {group: finance}
    columns:
      - name: id
        data_tests: [not_null]
  - name: signups
    config:
      group: finance
      meta: {owner: growth}
  - name: tagged
    config: {query_group: nightly}
  - name: orphan
"""


def parse(tmp_path: Path) -> Any:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": "p", "version": "1.0", "profile": "p", "config-version": 2})
    )
    for name in ("revenue", "signups", "tagged", "orphan"):
        (project / "models" / f"{name}.sql").write_text("select 1 as id\n")
    (project / "models" / "schema.yml").write_text(SCHEMA_YML)
    profile = {"p": {"target": "t", "outputs": {"t": {"type": "duckdb", "path": ":memory:"}}}}
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump(profile))
    result = dbtRunner().invoke(
        ["parse", "--no-write-json", "--project-dir", str(project), "--profiles-dir", str(tmp_path)]
    )
    assert result.success, result.exception
    return result.result


def test_owners_from_meta_groups_and_tested_models(tmp_path: Path) -> None:
    manifest = parse(tmp_path)
    assert owner_of(manifest, "model.p.revenue") == "finance@example.com"  # the group's
    assert owner_of(manifest, "model.p.signups") == "growth"  # meta.owner wins
    assert owner_of(manifest, "model.p.orphan") is None
    (test_id,) = [uid for uid in manifest.nodes if uid.startswith("test.p.not_null_revenue")]
    assert owner_of(manifest, test_id) == "finance@example.com"  # its model's
    assert owner_of(manifest, "model.p.missing") is None


def test_every_model_gets_a_query_group_that_dbt_redshift_sets(tmp_path: Path) -> None:
    manifest = parse(tmp_path)
    assert tag_query_groups(manifest) == 3  # all but the model with its own
    revenue = manifest.nodes["model.p.revenue"].config
    assert revenue.get("query_group") == "dbt:model.p.revenue"
    assert manifest.nodes["model.p.tagged"].config.get("query_group") == "nightly"
    # dbt-redshift's own test for setting it around the model's queries.
    adapter: Any = SimpleNamespace(
        config=SimpleNamespace(credentials=SimpleNamespace(query_group=None))
    )
    assert RedshiftAdapter._needs_query_group_change(adapter, revenue)
    untagged = parse(tmp_path / "again").nodes["model.p.revenue"].config
    assert not RedshiftAdapter._needs_query_group_change(adapter, untagged)
