"""The dbt commands each phase makes, without running dbt."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_runner.config import Phase, Settings
from dbt_runner.engine.invocation import DbtInvocation
from dbt_runner.engine.results import node_results
from dbt_runner.jobs.steps import phase_command, plan
from dbt_runner.state.store import Baseline
from tests.support import DEMO


def settings(**values: object) -> Settings:
    return Settings.model_validate({"project_dir": DEMO, **values})


def test_selection_flags_apply_to_node_phases_only() -> None:
    s = settings(select="tag:a  orders+", exclude="b", threads=3, full_refresh=True, fail_fast=True)
    phases = s.job_phases
    assert phase_command(Phase.SEED, s, phases) == [
        "seed",
        "--select",
        "tag:a",
        "orders+",
        "--exclude",
        "b",
        "--threads",
        "3",
        "--full-refresh",
        "--fail-fast",
    ]
    assert phase_command(Phase.BUILD, s, phases)[:8] == [
        "build",
        "--select",
        "tag:a",
        "orders+",
        "--exclude",
        "b",
        "--exclude-resource-type",
        "seed",
    ]
    assert phase_command(Phase.FRESHNESS, s, phases) == [
        "source",
        "freshness",
        "--select",
        "tag:a",
        "orders+",
        "--exclude",
        "b",
        "--threads",
        "3",
    ]
    assert phase_command(Phase.DOCS, s, phases) == [
        "docs",
        "generate",
        "--static",
        "--threads",
        "3",
    ]
    assert phase_command(Phase.DEPS, s, phases) == ["deps"]


def test_docs_reuse_compilation_only_after_an_unselected_build() -> None:
    full = settings()
    assert "--no-compile" in phase_command(Phase.DOCS, full, full.job_phases, compiled=True)
    assert "--no-compile" not in phase_command(Phase.DOCS, full, full.job_phases)
    invocation = DbtInvocation(DEMO, Path("/profiles"))
    for s, expected in (
        (full, True),
        (settings(select="orders"), False),
        (settings(job="slim", state_url="/state", phases="build,docs"), False),
    ):
        docs = dict(plan(s, invocation))["docs"]
        assert ("--no-compile" in docs) is expected


def test_build_loads_seeds_when_no_seed_phase_ran() -> None:
    s = settings(job="custom", phases="deps,build")
    assert "--exclude-resource-type" not in phase_command(Phase.BUILD, s, s.job_phases)


def test_plan_parses_once_before_the_first_phase_that_needs_it() -> None:
    s = settings(selector="nightly", vars={"a": 1}, target="ci")
    invocation = DbtInvocation(DEMO, Path("/profiles"), s.target, s.vars)
    steps = plan(s, invocation)
    assert [name for name, _ in steps] == [
        "deps",
        "debug",
        "parse",
        "seed",
        "build",
        "freshness",
        "docs",
    ]
    for _, args in steps:
        assert args[-8:] == [
            "--project-dir",
            str(DEMO),
            "--profiles-dir",
            "/profiles",
            "--target",
            "ci",
            "--vars",
            '{"a": 1}',
        ]
    assert plan(s, invocation)[4][1][1:3] == ["--selector", "nightly"]


class _Node:
    def __init__(self, uid: str, kind: str) -> None:
        self.unique_id = uid
        self.name = uid.rsplit(".", maxsplit=1)[-1]
        self.resource_type = kind
        self.relation_name = f'"db"."main"."{self.name}"'
        self.original_file_path = f"models/{self.name}.sql"


class _Result:
    def __init__(
        self, node: _Node, status: str, message: str | None = None, failures: int | None = None
    ) -> None:
        self.node, self.status, self.message, self.failures, self.execution_time = (
            node,
            status,
            message,
            failures,
            0.25,
        )


class _Results:
    def __init__(self, *results: _Result) -> None:
        self.results = list(results)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("success", "ok"),
        ("pass", "ok"),
        ("warn", "warn"),
        ("fail", "failed"),
        ("error", "failed"),
        ("runtime error", "failed"),
        ("skipped", "skipped"),
    ],
)
def test_node_outcomes(status: str, outcome: str) -> None:
    [node] = node_results("build", _Results(_Result(_Node("model.p.m", "model"), status, "msg", 2)))
    assert (node.status, node.outcome, node.phase, node.failures, node.execution_time_s) == (
        status,
        outcome,
        "build",
        2,
        0.25,
    )
    assert node.path == "models/m.sql"


def test_results_without_nodes_are_ignored() -> None:
    assert node_results("docs", None) == []
    assert node_results("debug", True) == []


def test_slim_selects_changes_defers_and_keeps_extra_selection() -> None:
    s = settings(
        job="slim",
        state_url="/state",
        select="tag:daily",
        exclude="big_model",
        slim={"select": "state:modified+1", "favor_state": True},
    )
    state = Baseline(Path("/run/state"))
    build = phase_command(Phase.BUILD, s, s.job_phases, baseline=state)
    assert build == [
        "build",
        "--select",
        "state:modified+1",
        "tag:daily",
        "--exclude",
        "big_model",
        "--state",
        "/run/state",
        "--defer",
        "--favor-state",
    ]
    # Without usable state, a slim job builds with the plain selection.
    assert phase_command(Phase.BUILD, s, s.job_phases) == [
        "build",
        "--select",
        "tag:daily",
        "--exclude",
        "big_model",
    ]
    # Freshness and docs never take the state selection.
    assert "--state" not in phase_command(Phase.FRESHNESS, s, s.job_phases, baseline=state)
    assert "--state" not in phase_command(Phase.DOCS, s, s.job_phases, baseline=state)
    # Nodes runs since the state rebuilt without a new state are built again.
    unsettled = Baseline(Path("/run/state"), ("fqn:demo.marts.orders",))
    again = phase_command(Phase.BUILD, s, s.job_phases, baseline=unsettled)
    assert again[:5] == [
        "build",
        "--select",
        "state:modified+1",
        "tag:daily",
        "fqn:demo.marts.orders",
    ]
    no_defer = settings(job="slim", state_url="/state", slim={"defer": False})
    assert "--defer" not in phase_command(
        Phase.BUILD, no_defer, no_defer.job_phases, baseline=state
    )


def test_a_fresh_job_checks_freshness_before_the_phases_that_select_by_it() -> None:
    s = settings(job="fresh", state_url="file:///tmp/s", phases="build,freshness,docs")
    assert s.job_phases == [Phase.FRESHNESS, Phase.BUILD, Phase.DOCS]
    full = settings(job="full", phases="build,freshness")
    assert full.job_phases == [Phase.BUILD, Phase.FRESHNESS]  # the data path's order
    with pytest.raises(ValueError, match="needs 'freshness'"):
        settings(job="fresh", state_url="file:///tmp/s", phases="build")
