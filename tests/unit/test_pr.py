"""Pull-request namespaces and the guard's rule, without a warehouse."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from dbt_runner.config import Job, Settings
from dbt_runner.errors import ConfigError
from dbt_runner.jobs import kind_of
from dbt_runner.jobs.pull_request import check_nodes
from dbt_runner.workspace.namespace import (
    Namespace,
    pr_schema,
    rewrite_profile,
    valid_root,
)
from tests.support import DEMO


def node(schema: str, kind: str = "model", materialized: str = "table", **config: object) -> object:
    return SimpleNamespace(
        schema=schema,
        resource_type=kind,
        config=SimpleNamespace(materialized=materialized, **config),
    )


def test_namespace_holds_its_schema_and_those_under_it() -> None:
    namespace = Namespace("12", "analytics_pr_12")
    assert namespace.holds("analytics_pr_12") and namespace.holds("ANALYTICS_PR_12_marts")
    assert not namespace.holds("analytics_pr_123")  # another pull request
    assert not namespace.holds("analytics") and not namespace.holds(None)


def test_the_guard_names_the_first_node_outside() -> None:
    namespace = Namespace("7", "ci_pr_7")
    manifest = SimpleNamespace(
        nodes={
            "model.p.a": node("ci_pr_7"),
            "model.p.b": node("ci_pr_7_marts"),
            "model.p.eph": node("prod", materialized="ephemeral"),  # no relation
            "test.p.t": node("prod_audit", kind="test", materialized="test"),  # none either
            "model.p.z": node("analytics_prod"),
        }
    )
    with pytest.raises(ConfigError, match=r"model\.p\.z would write to schema 'analytics_prod'"):
        check_nodes(manifest, set(manifest.nodes), namespace)
    selected = {"model.p.a", "model.p.b", "model.p.eph", "test.p.t"}
    assert check_nodes(manifest, selected, namespace) == ["ci_pr_7", "ci_pr_7_marts"]
    stored = {"test.p.s": node("prod_audit", kind="test", materialized="test", store_failures=True)}
    with pytest.raises(ConfigError, match=r"test\.p\.s"):
        check_nodes(SimpleNamespace(nodes=stored), set(stored), namespace)


def test_schema_pattern_and_a_root_that_must_name_the_pull_request() -> None:
    assert pr_schema("{schema}_pr_{pr}", "analytics", "42") == "analytics_pr_42"
    assert pr_schema("pr{pr}_{schema}", "analytics", "42") == "pr42_analytics"
    assert valid_root("analytics_pr_42", "42") == "analytics_pr_42"
    with pytest.raises(ConfigError, match="does not name it"):
        valid_root("analytics_pr_420", "42")


def test_an_existing_profile_is_copied_with_the_pull_requests_schema(tmp_path: Path) -> None:
    source = tmp_path / "project"
    source.mkdir()
    outputs = {
        "dev": {"type": "postgres", "schema": "{{ env_var('NO_SUCH_SCHEMA', 'analytics') }}"},
        "bq": {"type": "bigquery", "dataset": "warehouse"},
        "duck": {"type": "duckdb", "path": "x.duckdb"},
    }
    profile = {"demo": {"target": "dev", "outputs": outputs}}
    (source / "profiles.yml").write_text(yaml.safe_dump(profile))
    copy = tmp_path / "copy"
    assert rewrite_profile(source, copy, "demo", None, "{schema}_pr_{pr}", "9") == (
        "dev",
        "analytics_pr_9",  # as dbt renders the profile
    )
    assert (
        rewrite_profile(source, copy, "demo", "bq", "{schema}_pr_{pr}", "9")[1] == "warehouse_pr_9"
    )
    assert rewrite_profile(source, copy, "demo", "duck", "{schema}_pr_{pr}", "9")[1] == "main_pr_9"
    written = yaml.safe_load((copy / "profiles.yml").read_text())["demo"]["outputs"]
    assert written["duck"]["schema"] == "main_pr_9"
    with pytest.raises(ConfigError, match="no target 'nope'"):
        rewrite_profile(source, copy, "demo", "nope", "{schema}_pr_{pr}", "9")


def test_pull_request_settings() -> None:
    with_state = Settings.model_validate({"project_dir": DEMO, "pr": "feat1", "state_url": "/s"})
    assert (with_state.pr, with_state.job, with_state.defer_env) == ("feat1", Job.SLIM, "prod")
    assert kind_of(with_state).promotion().refused is not None  # a PR never sets the state
    explicit = Settings.model_validate({"project_dir": DEMO, "pr": "1", "job": "full"})
    assert explicit.job is Job.FULL
    assert Settings.model_validate({"project_dir": DEMO, "pr": ""}).pr is None
    for bad in ({"pr": "a/b"}, {"pr": "1", "pr_schema": "{schema}_pr"}):
        with pytest.raises(ValueError, match="pr"):
            Settings.model_validate({"project_dir": DEMO, **bad})


def test_distinct_pull_request_names_never_share_a_namespace() -> None:
    """Normalising (lower case, no '-' or '_') alone maps all of these to `feature2`: a
    name it changed keeps a short digest of itself, so each is its own namespace."""
    names = ["feature2", "feature-2", "Feature2", "FEATURE_2", "feature_2", "feature--2"]
    prs = [Settings.model_validate({"project_dir": DEMO, "pr": name}).pr for name in names]
    assert len(set(prs)) == len(names), prs
    assert prs[0] == "feature2"  # a name normalising leaves alone stays as it is
    for pr in prs:
        assert pr is not None and pr.startswith("feature2") and pr.isalnum() and pr.islower()
    # The same name is always the same namespace (cleanup finds what a run made).
    again = Settings.model_validate({"project_dir": DEMO, "pr": "Feature2"}).pr
    assert again == prs[2]
    roots = {pr_schema("{schema}_pr_{pr}", "analytics", str(pr)) for pr in prs}
    for root in roots:
        others = [Namespace(pr="x", root=other) for other in roots - {root}]
        assert not any(namespace.holds(root + "_marts") for namespace in others)
